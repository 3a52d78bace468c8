#!/usr/bin/env bash
# The package install test: builds the Debian packages, installs them with
# dpkg -i beside the system's Debian Dovecot (system paths, system
# configuration, system Dovecot instance), enables one user with the steps of
# docs/admin-guide.md only, starts both daemons with their systemd units' own
# command lines, delivers a message over LMTP, checks it reaches the
# reference server, then purges the packages and checks nothing is left.
#
# It MODIFIES THE MACHINE (installs packages, edits /etc/dovecot, starts the
# system Dovecot, adds a test mail account) and undoes all of it at the end,
# also on failure. Run as root on Debian 12; scripts/test.sh runs it only with
# MS_PACKAGE_TEST=1.
#
# Prints "install-test PASS <step>" / "install-test FAIL <step>" lines and
# exits non-zero on any failure.
#
# Environment:
#   MS_PKG_DEBS=DIR   use the .deb files already in DIR (skip the build)
#   MS_PKG_KEEP=1     keep the work directory (logs) after the run
#   MS_PKG_PORT_BASE  first of the three loopback ports used (default 24430)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
export TMPDIR=${TMPDIR:-$top/tmp}
mkdir -p "$TMPDIR"
work=$(mktemp -d "$TMPDIR/install-test.XXXXXX")
chmod 755 "$work"
log() { echo "install-test: $*"; }
pass() { echo "install-test PASS $*"; }
fails=0
fail() { echo "install-test FAIL $*"; fails=$((fails + 1)); }
die() { fail "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages)"
[ -r /usr/share/dovecot/dovecot-abi ] || die "dovecot-dev is not installed"
for p in dovecot-mobilesync mobilesync-server; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
    die "$p is already installed: this test installs and purges it itself"
  fi
done

port_base=${MS_PKG_PORT_BASE:-24430}
agent_port=$port_base           # mobilesync-server's agent listener
api_port=$((port_base + 1))     # its device API
test_user=mstest@example.org
vmail=ms-itest-vmail            # the Unix user the test mailbox belongs to
mailroot=/var/lib/ms-install-test
dovecot_started=0
pids=()

# ------------------------------------------------------------- clean-up
created_cert=0
run_dovecot_existed=0
[ -e /run/dovecot ] && run_dovecot_existed=1
# Files the administrator makes by hand (admin guide); "Remove" deletes them.
admin_files=(/etc/dovecot/mobilesync-master-users /etc/mobilesync/server.crt
  /etc/mobilesync/server.key /etc/mobilesync/server-ca.pem /etc/mobilesync/deployment.token
  /etc/mobilesync/master-password /etc/mobilesync/agents /etc/mobilesync/devices)
cleanup() {
  local rc=$?
  set +e
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  if [ $dovecot_started -eq 1 ]; then
    doveadm stop >/dev/null 2>&1 || kill -TERM "$(cat /run/dovecot/master.pid 2>/dev/null)" 2>/dev/null
    for _ in $(seq 50); do [ -e /run/dovecot/master.pid ] || break; sleep 0.1; done
  fi
  # Test-only Dovecot prerequisites (a mail account outside the packages).
  rm -f /etc/dovecot/conf.d/99-ms-install-test.conf /etc/dovecot/ms-install-test.passwd
  [ $created_cert -eq 1 ] && rm -f /etc/dovecot/private/dovecot.pem /etc/dovecot/private/dovecot.key
  rm -f "${admin_files[@]}"
  rmdir /etc/mobilesync 2>/dev/null
  [ $run_dovecot_existed -eq 0 ] && [ ! -e /run/dovecot/master.pid ] && rm -rf /run/dovecot
  rm -rf "$mailroot"
  for p in dovecot-mobilesync mobilesync-server; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed' && dpkg --purge "$p" >/dev/null 2>&1
  done
  # The packages keep their system users, as Debian packages do; the test
  # leaves the machine as it found it.
  getent passwd mobilesync >/dev/null && [ -n "${users_created:-}" ] && deluser --quiet mobilesync 2>/dev/null
  getent group mobilesync >/dev/null && [ -n "${users_created:-}" ] && delgroup --quiet mobilesync 2>/dev/null
  getent passwd mobilesync-server >/dev/null && [ -n "${users_created:-}" ] && deluser --quiet mobilesync-server 2>/dev/null
  getent group mobilesync-server >/dev/null && [ -n "${users_created:-}" ] && delgroup --quiet mobilesync-server 2>/dev/null
  getent passwd "$vmail" >/dev/null && userdel "$vmail" 2>/dev/null
  getent group "$vmail" >/dev/null && groupdel "$vmail" 2>/dev/null
  if [ "${MS_PKG_KEEP:-0}" = 1 ] || [ $fails -gt 0 ] || [ $rc -ne 0 ]; then
    log "logs kept in $work"
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
getent passwd mobilesync >/dev/null || getent passwd mobilesync-server >/dev/null || users_created=1

# What is on the machine before: files whose path names mobilesync.
leftovers() {
  find /etc /usr /lib /var /run /opt -xdev \( -path /var/lib/dpkg -o -path /var/cache \
    -o -path /var/log -o -path /var/tmp \) -prune -o -iname '*mobilesync*' -print 2>/dev/null | sort
}
leftovers >"$work/before.txt"

# ------------------------------------------------------------- 1. build
if [ -n "${MS_PKG_DEBS:-}" ]; then
  debs=$MS_PKG_DEBS
else
  log "building the packages (dpkg-buildpackage -us -uc -b)"
  src=$work/build/mobilesync-0.1.0
  mkdir -p "$src"
  # The tree as committed plus uncommitted edits, without build outputs.
  (cd "$top" && git ls-files -co --exclude-standard -z | grep -zv '^tmp/' |
    xargs -0 cp --parents -t "$src") || die "copying the source tree"
  if (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" nice -n 10 \
      dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1); then
    pass "dpkg-buildpackage -us -uc -b"
  else
    tail -n 40 "$work/build.log"
    die "dpkg-buildpackage -us -uc -b (log: $work/build.log)"
  fi
  debs=$work/build
  if command -v lintian >/dev/null; then
    lintian --tag-display-limit 0 "$debs"/*.changes >"$work/lintian.txt" 2>&1
    cat "$work/lintian.txt"
    if grep -q '^E: ' "$work/lintian.txt"; then fail "lintian reports errors"; else pass "lintian: no errors"; fi
  fi
fi
agent_deb=$(ls "$debs"/dovecot-mobilesync_*.deb 2>/dev/null | head -n1)
server_deb=$(ls "$debs"/mobilesync-server_*.deb 2>/dev/null | head -n1)
[ -n "$agent_deb" ] && [ -n "$server_deb" ] || die "no .deb files in $debs"
abi=$(cat /usr/share/dovecot/dovecot-abi)
if dpkg-deb -f "$agent_deb" Depends | grep -q "dovecot-abi-$abi"; then
  pass "dovecot-mobilesync depends on dovecot-abi-$abi"
else
  fail "dovecot-mobilesync does not depend on dovecot-abi-$abi: $(dpkg-deb -f "$agent_deb" Depends)"
fi

# ------------------------------------------------------------- 2. install
log "installing $(basename "$agent_deb") $(basename "$server_deb")"
dpkg -i "$agent_deb" "$server_deb" >"$work/dpkg-install.log" 2>&1 ||
  { cat "$work/dpkg-install.log"; die "dpkg -i"; }
pass "dpkg -i"
for f in /usr/lib/dovecot/modules/lib20_mobilesync_plugin.so \
  /usr/lib/dovecot/modules/lib95_mobilesync_lda_plugin.so /usr/sbin/mobilesync-agent \
  /usr/sbin/mobilesyncctl /usr/bin/mobilesync-server /usr/bin/mobilesync-device \
  /etc/dovecot/conf.d/90-mobilesync.conf /etc/mobilesync/agent.conf /etc/mobilesync/server.conf \
  /lib/systemd/system/mobilesync-agent.service /lib/systemd/system/mobilesync-server.service \
  /usr/share/man/man8/mobilesync-agent.8.gz /usr/share/man/man1/mobilesync-device.1.gz; do
  [ -e "$f" ] || fail "not installed: $f"
done
getent passwd mobilesync >/dev/null && getent passwd mobilesync-server >/dev/null &&
  pass "system users created" || fail "system users missing"
# Installed disabled: the Dovecot configuration is unchanged in effect.
if doveconf -h mail_plugins 2>/dev/null | grep -q mobilesync; then
  fail "the plugin is enabled right after installation"
else
  pass "installed disabled (mail_plugins without mobilesync)"
fi

# ------------------------------------------- 3. the mail account (test setup)
# The machine's Dovecot gets one test mail account, as a site would already
# have: a passwd-file user whose mail belongs to the Unix user $vmail. This
# is the test's own prerequisite, not a mobilesync step.
useradd --no-create-home --user-group --shell /usr/sbin/nologin "$vmail" ||
  die "useradd $vmail"
vuid=$(id -u "$vmail"); vgid=$(id -g "$vmail")
install -d -o "$vmail" -g "$vmail" -m 0700 "$mailroot" "$mailroot/home"
if [ ! -e /etc/dovecot/private/dovecot.pem ]; then
  # Debian's dovecot-core makes this at install; this machine lacks it.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -keyout /etc/dovecot/private/dovecot.key -out /etc/dovecot/private/dovecot.pem \
    >/dev/null 2>&1 || die "making Dovecot's certificate"
  created_cert=1
fi
printf '%s:{PLAIN}test-password:%s:%s::%s::userdb_mail=maildir:~/Maildir\n' \
  "$test_user" "$vuid" "$vgid" "$mailroot/home" >/etc/dovecot/ms-install-test.passwd
chmod 0640 /etc/dovecot/ms-install-test.passwd
chgrp dovecot /etc/dovecot/ms-install-test.passwd
cat >/etc/dovecot/conf.d/99-ms-install-test.conf <<EOF
# Written by mobilesync's tests/package/install_test.sh; removed at its end.
passdb {
  driver = passwd-file
  args = /etc/dovecot/ms-install-test.passwd
}
userdb {
  driver = passwd-file
  args = /etc/dovecot/ms-install-test.passwd
}
log_path = $work/dovecot.log
mail_debug = yes
namespace inbox {
  mailbox Trash {
    auto = create
    special_use = \\Trash
  }
  mailbox Sent {
    auto = create
    special_use = \\Sent
  }
}
EOF
touch "$work/dovecot.log"
if [ -e /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
  log "the system Dovecot is running: it is reloaded with the new configuration"
  system_dovecot_was_running=1
else
  system_dovecot_was_running=0
fi

# ---------------------- 4. the documented steps (docs/admin-guide.md) ----
# "Certificates": a CA, the server's certificate signed by it (name
# localhost, address 127.0.0.1), the CA given to the agent.
pki=$work/pki
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mobilesync test CA" \
  -keyout "$pki/ca.key" -out "$pki/ca.pem" >/dev/null 2>&1 &&
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
  -keyout "$pki/server.key" -out "$pki/server.csr" >/dev/null 2>&1 &&
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" \
  -CAcreateserial -days 2 -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n') \
  -out "$pki/server.crt" >/dev/null 2>&1 || die "making the test certificates"
install -m 0644 "$pki/server.crt" /etc/mobilesync/server.crt
install -m 0640 -g mobilesync-server "$pki/server.key" /etc/mobilesync/server.key
install -m 0644 "$pki/ca.pem" /etc/mobilesync/server-ca.pem

# "Set up the reference server": the agent's token, the device's token.
openssl rand -hex 32 >"$work/agent.token"
install -m 0600 -o mobilesync -g mobilesync "$work/agent.token" /etc/mobilesync/deployment.token
openssl rand -hex 32 >"$work/device.token"
chmod 0600 "$work/device.token"
agent_sha=$(tr -d '\n' <"$work/agent.token" | sha256sum | cut -d' ' -f1)
device_sha=$(tr -d '\n' <"$work/device.token" | sha256sum | cut -d' ' -f1)
printf 'corp token_sha256=%s users=*\n' "$agent_sha" >/etc/mobilesync/agents
printf '%s token_sha256=%s address=%s window=10\n' "$test_user" "$device_sha" "$test_user" \
  >/etc/mobilesync/devices
chgrp mobilesync-server /etc/mobilesync/agents /etc/mobilesync/devices
chmod 0640 /etc/mobilesync/agents /etc/mobilesync/devices
sed -i -e "s/^listen = .*/listen = 127.0.0.1:$agent_port/" \
  -e "s/^device_api_listen = .*/device_api_listen = 127.0.0.1:$api_port/" \
  -e 's|^#devices_file = .*|devices_file = /etc/mobilesync/devices|' /etc/mobilesync/server.conf
mobilesync-server -c /etc/mobilesync/server.conf --check-config ||
  fail "mobilesync-server --check-config"

# "Configure the agent".
sed -i -e "s/^server = .*/server = 127.0.0.1:$agent_port/" \
  -e 's|^#deployment_token_file = .*|deployment_token_file = /etc/mobilesync/deployment.token|' \
  /etc/mobilesync/agent.conf
master_pw=$(openssl rand -hex 16)
printf '%s\n' "$master_pw" >"$work/master-password"
install -m 0600 -o mobilesync -g mobilesync "$work/master-password" /etc/mobilesync/master-password
runuser -u mobilesync -- mobilesync-agent -c /etc/mobilesync/agent.conf --check-config ||
  fail "mobilesync-agent --check-config"

# "Enable the plugin in Dovecot": uncomment the snippet, master user, group.
sed -i 's/^#\([^#]\)/\1/' /etc/dovecot/conf.d/90-mobilesync.conf
printf 'mobilesync-agent:%s\n' "$(doveadm pw -s SHA512-CRYPT -p "$master_pw")" \
  >/etc/dovecot/mobilesync-master-users
chgrp dovecot /etc/dovecot/mobilesync-master-users
chmod 0640 /etc/dovecot/mobilesync-master-users
adduser --quiet "$vmail" mobilesync
cp /etc/dovecot/conf.d/90-mobilesync.conf "$work/90-mobilesync.conf.enabled"
doveconf -n >"$work/doveconf-n.txt" 2>&1 || { cat "$work/doveconf-n.txt"; die "doveconf -n"; }
grep -q 'mail_plugins = .*notify mobilesync' "$work/doveconf-n.txt" &&
  pass "Dovecot configuration with the plugin enabled" || fail "mail_plugins not set: see $work/doveconf-n.txt"

# "Enable a user": the userdb field, then the agent's registry (below).
sed -i "s|^\($test_user:.*\)\$|\1 userdb_mobilesync_enabled=yes|" /etc/dovecot/ms-install-test.passwd

# Dovecot: the system instance (system paths, /etc/dovecot/dovecot.conf).
if [ $system_dovecot_was_running -eq 1 ]; then
  doveadm reload || die "doveadm reload"
else
  /usr/sbin/dovecot || { tail -n 20 "$work/dovecot.log"; die "starting the system Dovecot"; }
  dovecot_started=1
fi
for _ in $(seq 50); do [ -S /run/dovecot/lmtp ] && break; sleep 0.1; done
pass "system Dovecot running ($(dovecot --version))"
doveadm user -f mobilesync_enabled "$test_user" 2>/dev/null | grep -qx yes &&
  pass "userdb says mobilesync_enabled=yes" || fail "doveadm user -f mobilesync_enabled $test_user"

# ------------------------------- 5. the services, as their units run them
# systemd is PID 1 on a real host; here it may not be. Without it, do what
# the unit says: its RuntimeDirectory/StateDirectory, then its ExecStart as
# its User/Group with no new privileges, and wait for the Type=notify
# READY=1 on a NOTIFY_SOCKET of our own.
unit_value() { sed -n "s/^$2=//p" "/lib/systemd/system/$1" | tail -n1; }
start_unit() {
  local unit=$1 name=$2 user group cmd rt st mode notify
  user=$(unit_value "$unit" User); group=$(unit_value "$unit" Group)
  cmd=$(unit_value "$unit" ExecStart)
  rt=$(unit_value "$unit" RuntimeDirectory); st=$(unit_value "$unit" StateDirectory)
  if [ -n "$rt" ]; then
    mode=$(unit_value "$unit" RuntimeDirectoryMode)
    install -d -o "$user" -g "$group" -m "${mode:-0755}" "/run/$rt"
  fi
  if [ -n "$st" ]; then
    mode=$(unit_value "$unit" StateDirectoryMode)
    install -d -o "$user" -g "$group" -m "${mode:-0755}" "/var/lib/$st"
  fi
  notify=$work/$name.notify
  rm -f "$notify" "$work/$name.ready"
  python3 - "$notify" "$work/$name.ready" <<'PY' &
import socket, sys, os, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
s.settimeout(30)
end = time.time() + 30
try:
    while time.time() < end:
        msg = s.recv(4096).decode()
        if "READY=1" in msg.split("\n"):
            open(sys.argv[2], "w").write(msg)
            break
except socket.timeout:
    pass
PY
  local listener=$!
  for _ in $(seq 50); do [ -S "$notify" ] && break; sleep 0.1; done
  log "starting $unit: $cmd (as $user:$group)"
  # shellcheck disable=SC2086
  NOTIFY_SOCKET=$notify setpriv --reuid="$user" --regid="$group" --init-groups \
    --no-new-privs -- $cmd >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait "$listener"
  if [ -s "$work/$name.ready" ]; then
    pass "$unit started and signalled READY=1"
  else
    tail -n 20 "$work/$name.log"
    die "$unit did not signal readiness (log: $work/$name.log)"
  fi
}
start_unit mobilesync-server.service server
start_unit mobilesync-agent.service agent

# "Enable a user", second half: the agent's registry.
mobilesyncctl enable "$test_user" >"$work/enable.txt" 2>&1 &&
  pass "mobilesyncctl enable $test_user" || { cat "$work/enable.txt"; fail "mobilesyncctl enable"; }
mobilesyncctl users | grep -q "^$test_user " && pass "mobilesyncctl users lists the user" ||
  fail "mobilesyncctl users: $(mobilesyncctl users 2>&1)"
# "Check status".
for _ in $(seq 100); do
  mobilesyncctl --json status 2>/dev/null | grep -q '"connected"' && break
  sleep 0.1
done
mobilesyncctl status >"$work/status-before.txt" 2>&1
cat "$work/status-before.txt"

# ------------------------------------------------------ 6. deliver a message
subject="install test $(date +%s) $$"
python3 - "$test_user" "$subject" <<'PY' >"$work/lmtp.txt" 2>&1 || { cat "$work/lmtp.txt"; die "LMTP delivery"; }
import smtplib, sys
from email.message import EmailMessage
user, subject = sys.argv[1], sys.argv[2]
m = EmailMessage()
m["From"] = "sender@example.net"
m["To"] = user
m["Subject"] = subject
m["Message-ID"] = "<install-test-%s@example.net>" % subject.split()[2]
m.set_content("Delivered by the package install test.\n")
c = smtplib.LMTP("/run/dovecot/lmtp")
c.send_message(m, from_addr="sender@example.net", to_addrs=[user])
c.quit()
print("delivered")
PY
pass "delivered over LMTP to the system Dovecot"
grep -q "mobilesync: enabled for user $test_user" "$work/dovecot.log" &&
  pass "Dovecot log: mobilesync: enabled for user $test_user" ||
  fail "no 'mobilesync: enabled for user' in the Dovecot log"

device() {
  mobilesync-device --api "127.0.0.1:$api_port" --token-file "$work/device.token" "$@"
}
seen=0
for _ in $(seq 100); do
  if device list 2>/dev/null | grep -qF "$subject"; then seen=1; break; fi
  sleep 0.2
done
if [ $seen -eq 1 ]; then
  pass "the delivered message reached mobilesync-server (push)"
else
  log "not on the server after 20 s; asking for a sync (mobilesyncctl sync --wait)"
  mobilesyncctl sync "$test_user" --wait >"$work/sync.txt" 2>&1
  cat "$work/sync.txt"
  if device list 2>/dev/null | grep -qF "$subject"; then
    fail "the message reached the server only after mobilesyncctl sync (no push)"
  else
    fail "the delivered message never reached mobilesync-server"
  fi
fi
device list >"$work/device-list.txt" 2>&1
cat "$work/device-list.txt"
mobilesyncctl status "$test_user" >"$work/status-user.txt" 2>&1
cat "$work/status-user.txt"
if [ $fails -gt 0 ]; then
  log "--- agent log (tail)"; tail -n 40 "$work/agent.log"
  log "--- server log (tail)"; tail -n 20 "$work/server.log"
  log "--- Dovecot log (mobilesync lines)"; grep -i mobilesync "$work/dovecot.log" | tail -n 20
fi

# ------------------------------------------------------ 7. stop and purge
# Let the running session end (the push's follow-up pull), then stop the
# agent before the server, as `systemctl stop` ordering would.
for _ in $(seq 100); do
  mobilesyncctl status "$test_user" 2>/dev/null | grep -q "^$test_user .* running\$" || break
  sleep 0.1
done
for i in 1 0; do
  kill -TERM "${pids[$i]}" 2>/dev/null
  wait "${pids[$i]}"; rc=$?
  [ $rc -eq 0 ] && pass "$([ $i = 1 ] && echo agent || echo server) stopped on SIGTERM (exit 0)" ||
    fail "$([ $i = 1 ] && echo agent || echo server) exited with $rc on SIGTERM"
done
pids=()
if [ $dovecot_started -eq 1 ]; then
  doveadm stop >/dev/null 2>&1
  for _ in $(seq 50); do [ -e /run/dovecot/master.pid ] || break; sleep 0.1; done
  dovecot_started=0
fi
rm -f /etc/dovecot/conf.d/99-ms-install-test.conf /etc/dovecot/ms-install-test.passwd
# "Remove": purge; then the administrator's own files (admin guide).
dpkg --purge dovecot-mobilesync mobilesync-server >"$work/dpkg-purge.log" 2>&1 &&
  pass "dpkg --purge" || { cat "$work/dpkg-purge.log"; fail "dpkg --purge"; }
# The admin guide's "Remove" step: the files the administrator made.
rm -f "${admin_files[@]}"
rmdir /etc/mobilesync 2>/dev/null
leftovers >"$work/after.txt"
if diff -u "$work/before.txt" "$work/after.txt" >"$work/leftovers.diff"; then
  pass "no files left after purge"
else
  cat "$work/leftovers.diff"
  fail "files left after purge"
fi
for d in /etc/mobilesync /var/lib/mobilesync /var/lib/mobilesync-server /run/mobilesync \
  /usr/share/doc/dovecot-mobilesync /usr/share/doc/mobilesync-server; do
  [ -e "$d" ] && fail "left after purge: $d"
done

echo "install-test: $fails failure(s)"
[ $fails -eq 0 ]
