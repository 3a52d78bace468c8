#!/usr/bin/env bash
# mobilesync demo: the whole system on one machine, on loopback ports, in a
# temporary directory, and two-way sync shown step by step.
#
#   Dovecot (with the mobilesync plugin; users alice and bob)
#   mobilesync-server (the remote mobile mail server; its device API plays the phone)
#   mobilesync-agent  (the organisation's side: dials out to the server)
#   ms-mta.py         (stand-in for the organisation's MTA: SMTP in, LMTP to Dovecot;
#                      and the sendmail program the agent submits with)
#
#   scripts/demo.sh          run the demo, then tear everything down
#   scripts/demo.sh --keep   leave it running to explore (Ctrl-C tears down)
#
# Installs what it needs on Debian 12 (apt-get) unless MS_SKIP_DEPS=1.
# Builds into build-demo/ (MS_DEMO_BUILD_DIR=DIR reuses another build dir).
# Every command a user would type is printed as "+ command".
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/deps.sh
. "$top/scripts/deps.sh"
keep=0
[ "${1:-}" = "--keep" ] && keep=1

[ "${MS_SKIP_DEPS:-0}" = 1 ] || ms_install_deps
build=${MS_DEMO_BUILD_DIR:-$top/build-demo}
if [ -x "$build/src/sync_agent/mobilesync-agent" ] && [ "${MS_DEMO_REBUILD:-1}" = 0 ]; then
  echo "== reusing the build in $build"
else
  echo "== building in $build"
  ms_build "$build" >/dev/null
fi
py=/usr/bin/python3  # Debian's, with python3-aiosmtpd
[ -x "$py" ] || py=python3
export PATH="$build/src/sync_server:$build/src/sync_agent:$PATH"

demo=$(mktemp -d /tmp/msdemo.XXXXXX)   # short: UNIX socket paths are limited
chmod 755 "$demo"  # Dovecot's auth process (user dovecot) reads the passwd file
pids=()
teardown() {
  trap - EXIT INT TERM
  echo "== tearing down"
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || true
  done
  if [ "${MS_KEEP_TMP:-0}" = 1 ]; then echo "   kept $demo"; else rm -rf "$demo"; fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
run() { echo "+ $*"; "$@"; }
# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "!! not within ${secs}s: $what"; return 1; fi
    sleep 0.2
  done
  echo "   ok: $what"
}
# start NAME LOG COMMAND...: a daemon in its own process group, PID remembered.
start() {
  local name=$1 log=$2; shift 2
  setsid "$@" >>"$log" 2>&1 &
  pids+=($!)
  eval "${name}_pid=$!"
  disown $!  # killed by PID at teardown; no job-control chatter
}
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sha256() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

imap_port=$(free_port); lmtp_port=$(free_port); server_port=$(free_port)
api_port=$(free_port); smtp_port=$(free_port)

# ------------------------------------------------------------- secrets, TLS
say "generating certificates and secrets in $demo"
if [ "$(id -u)" -eq 0 ]; then
  uid=$(id -u mail); gid=$(id -g mail); mail_group=mail
else
  uid=$(id -u); gid=$(id -g); mail_group=""
fi
mkdir -p "$demo/modules" "$demo/mta" "$demo/agent-state" "$demo/home/alice" "$demo/home/bob"
chmod 700 "$demo/agent-state"
chown "$uid:$gid" "$demo/home/alice" "$demo/home/bob"
ms_localhost_certs "$demo" "mobilesync demo CA" 2
umask 077
openssl rand -hex 32 >"$demo/trigger.secret"     # shared: plugin and agent ...
openssl rand -hex 32 >"$demo/agent.token"        # the agent's deployment token
openssl rand -hex 32 >"$demo/alice.token"        # the phones' device tokens
openssl rand -hex 32 >"$demo/bob.token"
cp "$demo/trigger.secret" "$demo/server-trigger.secret"  # ... and the server (its own host)
echo "master-$(openssl rand -hex 8)" >"$demo/master.pw"
umask 022
if [ -n "$mail_group" ]; then  # LMTP runs as the mail user and reads the secret
  chgrp "$mail_group" "$demo/trigger.secret"; chmod 640 "$demo/trigger.secret"
fi

# ------------------------------------------------------------------ Dovecot
for m in /usr/lib/dovecot/modules/*; do ln -s "$m" "$demo/modules/"; done
ln -sf "$build/src/plugin/.libs/lib20_mobilesync_plugin.so" "$demo/modules/"
ln -sf "$build/src/plugin/.libs/lib95_mobilesync_lda_plugin.so" "$demo/modules/"
for u in alice bob; do
  echo "$u:{PLAIN}$u-pw:$uid:$gid::$demo/home/$u::userdb_mobilesync_enabled=yes"
done >"$demo/passwd"
echo "mobilesync-agent:{PLAIN}$(cat "$demo/master.pw")" >"$demo/master-users"
chmod 644 "$demo/passwd" "$demo/master-users"
nonroot=""
if [ "$(id -u)" -ne 0 ]; then
  nonroot="default_login_user = $(id -un)
default_internal_user = $(id -un)
default_internal_group = $(id -gn)"
fi
cat >"$demo/dovecot.conf" <<CONF
base_dir = $demo/run
state_dir = $demo/state
instance_name = msdemo-$imap_port
log_path = $demo/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl_cert = <$demo/server.pem
ssl_key = <$demo/server.key
disable_plaintext_auth = no
first_valid_uid = 1
first_valid_gid = 1
$nonroot
mail_location = maildir:~/Maildir
mail_plugin_dir = $demo/modules
# conf.d/90-mobilesync.conf, uncommented:
mail_plugins = \$mail_plugins notify mobilesync
protocol lmtp {
  mail_plugins = \$mail_plugins mobilesync_lda
}
mail_attribute_dict = file:%h/dovecot-attributes
imap_metadata = yes
auth_master_user_separator = *
plugin {
  mobilesync_agent_socket = $demo/agent.sock
  mobilesync_trigger_secret_file = $demo/trigger.secret
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
}
passdb {
  driver = passwd-file
  args = $demo/master-users
  master = yes
  result_success = continue
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $demo/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $demo/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}
CONF
say "starting Dovecot (IMAP 127.0.0.1:$imap_port, LMTP 127.0.0.1:$lmtp_port)"
start dovecot "$demo/dovecot.out" /usr/sbin/dovecot -F -c "$demo/dovecot.conf"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for 20 "Dovecot answers" port_open "$imap_port"
wait_for 20 "LMTP answers" port_open "$lmtp_port"

# --------------------------------------------------- the MTA stand-in (SMTP)
say "starting the MTA stand-in (SMTP 127.0.0.1:$smtp_port -> Dovecot LMTP)"
start mta "$demo/mta.log" "$py" "$top/scripts/ms-mta.py" smtpd --listen "127.0.0.1:$smtp_port" \
  --lmtp "127.0.0.1:$lmtp_port" --local-domain example.test --spool "$demo/mta"
wait_for 20 "SMTP answers" port_open "$smtp_port"
cat >"$demo/sendmail" <<SH
#!/bin/sh
MS_MTA_LMTP=127.0.0.1:$lmtp_port MS_MTA_SPOOL=$demo/mta MS_MTA_LOCAL_DOMAIN=example.test exec $py $top/scripts/ms-mta.py sendmail "\$@"
SH
chmod 755 "$demo/sendmail"

# ------------------------------------------------------ mobilesync-server
say "starting mobilesync-server (agents: 127.0.0.1:$server_port TLS, device API: 127.0.0.1:$api_port)"
umask 077
cat >"$demo/agents" <<EOF
# NAME  credentials                                         users
corp    token_sha256=$(sha256 "$(cat "$demo/agent.token")")  users=alice,bob
EOF
cat >"$demo/devices" <<EOF
alice  token_sha256=$(sha256 "$(cat "$demo/alice.token")")  address=alice@example.test  window=5
bob    token_sha256=$(sha256 "$(cat "$demo/bob.token")")  address=bob@example.test  window=5
EOF
umask 022
cat >"$demo/server.conf" <<EOF
listen = 127.0.0.1:$server_port
tls_cert_file = $demo/server.pem
tls_key_file = $demo/server.key
agents_file = $demo/agents
database = $demo/server.db
device_api_listen = 127.0.0.1:$api_port
devices_file = $demo/devices
smtp = 127.0.0.1:$smtp_port
trigger_secret_file = $demo/server-trigger.secret
trigger_from = mobilesync@mobile.example
EOF
start server "$demo/server.log" mobilesync-server -c "$demo/server.conf" -F
wait_for 20 "server listening" grep -q "started (listen" "$demo/server.log"

# ------------------------------------------------------- mobilesync-agent
say "starting mobilesync-agent (dials out to the server; IMAP to Dovecot as a master user)"
cat >"$demo/agent.conf" <<EOF
server = 127.0.0.1:$server_port
server_name = localhost
tls_ca_file = $demo/ca.pem
deployment_token_file = $demo/agent.token
# After losing the server the agent waits 1-2 minutes before redialling:
# long enough to show trigger mail below.
reconnect_min = 2m
reconnect_max = 5m
keepalive_interval = 10s
imap = 127.0.0.1:$imap_port
master_user = mobilesync-agent
master_password_file = $demo/master.pw
trigger_secret_file = $demo/trigger.secret
control_socket = $demo/agent.sock
${mail_group:+control_group = $mail_group}
state_dir = $demo/agent-state
sync_interval = 1m
coalesce_delay = 50ms
retry_min = 1s
doveadm_config = $demo/dovecot.conf
log_level = debug
EOF
cp "$demo/agent.conf" "$demo/agent.conf.base"
echo "sendmail_path = $demo/sendmail" >>"$demo/agent.conf"
if ! mobilesync-agent -c "$demo/agent.conf" --check-config >/dev/null 2>&1; then
  echo "   (this agent has no sendmail_path setting yet: composing via sync cannot be submitted)"
  cp "$demo/agent.conf.base" "$demo/agent.conf"
fi
start agent "$demo/agent.log" mobilesync-agent -c "$demo/agent.conf" -F
wait_for 20 "agent shook hands with the server" grep -q "remote: handshake done" "$demo/agent.log"
ctl() { run mobilesyncctl -c "$demo/agent.conf" "$@"; }
ctl enable alice
ctl enable bob
ctl status

# --------------------------------------------------------------- helpers
export MOBILESYNC_DEVICE_API=127.0.0.1:$api_port
export MOBILESYNC_DEVICE_TOKEN_FILE=$demo/alice.token
deliver() {  # deliver USER SUBJECT: a message from outside, over LMTP
  echo "+ deliver to $1 over LMTP: \"$2\""
  "$py" - "$lmtp_port" "$1" "$2" <<'PY'
import smtplib, sys, email.utils
port, user, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = ("From: Carol <carol@elsewhere.test>\r\nTo: %s@example.test\r\nSubject: %s\r\n"
       "Date: %s\r\nMessage-ID: %s\r\n\r\nHello %s!\r\n"
       % (user, subject, email.utils.formatdate(), email.utils.make_msgid("demo"), user))
with smtplib.LMTP("127.0.0.1", port) as s:
    s.sendmail("carol@elsewhere.test", [user], msg)
PY
}
# imap USER ARGS...: a tiny IMAP client logged in as the user.
#   list MAILBOX | seen MAILBOX SUBJECT | move SUBJECT FROM TO
imap() {
  "$py" - "$imap_port" "$@" <<'PY'
import imaplib, re, sys
port, user, cmd, args = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
m = imaplib.IMAP4("127.0.0.1", port)
m.login(user, user + "-pw")
def messages(box):
    m.select('"%s"' % box)
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = []
    for part in data:
        if isinstance(part, tuple):
            uid = re.search(rb"UID (\d+)", part[0]).group(1).decode()
            flags = re.search(rb"FLAGS \(([^)]*)\)", part[0]).group(1).decode()
            subj = part[1].decode(errors="replace").strip()
            subj = subj[len("Subject: "):] if subj.startswith("Subject: ") else subj
            out.append((uid, flags, subj))
    return out
rc = 0
if cmd == "list":
    for uid, flags, subj in messages(args[0]):
        print("   %-8s uid %-3s flags (%s)  %s" % (args[0], uid, flags, subj))
elif cmd == "seen":
    rc = 0 if any(s == args[1] and "\\Seen" in f for _, f, s in messages(args[0])) else 1
elif cmd == "has":
    rc = 0 if any(s == args[1] for _, _, s in messages(args[0])) else 1
elif cmd == "move":
    uids = [u for u, _, s in messages(args[1]) if s == args[0]]
    if not uids:
        rc = 1
    for u in uids:
        print("+ imap %s: SELECT %s; UID MOVE %s %s" % (user, args[1], u, args[2]))
        m.uid("MOVE", u, args[2])
m.logout()
sys.exit(rc)
PY
}
device_id() {  # device_id SUBJECT [TOKEN_FILE]: the remote id on the device
  MOBILESYNC_DEVICE_TOKEN_FILE=${2:-$MOBILESYNC_DEVICE_TOKEN_FILE} mobilesync-device --json list |
    "$py" -c 'import json,sys; s=sys.argv[1]; print(next((str(m["id"]) for m in json.load(sys.stdin)["messages"] if m["subject"]==s), ""))' "$1"
}
on_device() { [ -n "$(device_id "$@")" ]; }
device_state() {
  mobilesync-device --json list |
    "$py" -c 'import json,sys; s=sys.argv[1]; print(next((m["state"] for m in json.load(sys.stdin)["messages"] if m["subject"]==s), ""))' "$1"
}
state_is() { [ "$(device_state "$1")" = "$2" ]; }

# --------------------------------------------------------------- the show
say "1. mail delivered to Dovecot appears on alice's phone"
deliver alice "Welcome to the demo"
deliver alice "Lunch on Friday?"
deliver alice "Quarterly report"
wait_for 15 "the deliveries reached the device (pushed by the plugin's poke)" on_device "Quarterly report" || true
run mobilesync-device list

say "2. alice reads a message on her phone: Dovecot marks it \\Seen"
id=$(device_id "Lunch on Friday?")
if [ -n "$id" ]; then
  run mobilesync-device read "$id"
  wait_for 15 "\\Seen in Dovecot" imap alice seen INBOX "Lunch on Friday?" || true
else
  echo "!! not on the device, nothing to read"
fi
echo "+ doveadm -c $demo/dovecot.conf fetch -u alice 'uid flags hdr.subject' mailbox INBOX"
doveadm -c "$demo/dovecot.conf" fetch -u alice 'uid flags hdr.subject' mailbox INBOX | sed 's/^/   /'

say "3. alice moves a message to Trash in her desktop mail client (IMAP): it leaves the phone's inbox"
imap alice move "Welcome to the demo" INBOX Trash
wait_for 15 "the phone shows it in Trash" state_is "Welcome to the demo" trash || true
run mobilesync-device list
imap alice list Trash

say "4. alice writes to bob on her phone; it is sent through the organisation and filed in Sent"
echo "+ echo 'See you at noon.' | mobilesync-device compose --to bob@example.test --subject 'Re: Lunch on Friday?' --via-sync"
echo "See you at noon." |
  mobilesync-device compose --to bob@example.test --subject "Re: Lunch on Friday?" --via-sync
wait_for 20 "in alice's Sent folder" imap alice has Sent "Re: Lunch on Friday?" || true
echo "+ cat $demo/mta/sendmail.log    # what the agent handed to sendmail"
sed 's/^/   /' "$demo/mta/sendmail.log" 2>/dev/null || echo "   (nothing submitted)"
imap alice list Sent
imap bob list INBOX

say "5. trigger mail: the agent is offline, the phone asks for a sync"
echo "   The remote server restarts; the agent waits a minute or two before redialling."
run kill -9 "$server_pid"
start server "$demo/server.log" mobilesync-server -c "$demo/server.conf" -F
wait_for 20 "server back" port_open "$api_port"
agent_offline() { ! mobilesyncctl -c "$demo/agent.conf" --json status | grep -q '"state":"connected"'; }
wait_for 20 "agent is not connected" agent_offline || true
ctl status || true
id=$(device_id "Quarterly report")
[ -n "$id" ] && run mobilesync-device read "$id"
run mobilesync-device sync-now
echo "   The server had no connection to the agent, so it mailed a trigger message:"
wait_for 15 "trigger relayed to Dovecot" grep -q "to=alice@example.test local=alice" "$demo/mta/mta.log" || true
grep "smtpd.*alice@example.test" "$demo/mta/mta.log" | tail -1 | sed 's/^/   mta: /'
wait_for 15 "the plugin swallowed it and poked the agent" grep -q "trigger accepted" "$demo/dovecot.log" || true
grep "trigger accepted" "$demo/dovecot.log" | tail -1 | sed 's/^/   dovecot: /'
wait_for 15 "the agent started a sync" grep -q "session started (trigger message)" "$demo/agent.log" || true
grep "session started (trigger message)" "$demo/agent.log" | tail -1 | sed 's/^/   agent: /'
if [ -n "$id" ]; then
  wait_for 30 "the phone's read reached Dovecot" imap alice seen INBOX "Quarterly report" || true
fi
imap alice list INBOX

# ------------------------------------------------------------------ explore
cat >"$demo/env.sh" <<EOF
export PATH="$build/src/sync_server:$build/src/sync_agent:\$PATH"
export MOBILESYNC_DEVICE_API=127.0.0.1:$api_port
export MOBILESYNC_DEVICE_TOKEN_FILE=$demo/alice.token   # bob: $demo/bob.token
alias ctl='mobilesyncctl -c $demo/agent.conf'
alias dadm='doveadm -c $demo/dovecot.conf'
EOF
if [ $keep -eq 1 ]; then
  say "running; explore in another shell:"
  cat <<EOF
   . $demo/env.sh
   mobilesync-device list                      # alice's phone (read ID, trash ID, compose ..., sync-now)
   ctl status; ctl sync alice --wait           # the agent
   dadm fetch -u alice 'uid flags hdr.subject' mailbox INBOX
   IMAP 127.0.0.1:$imap_port (alice/alice-pw, bob/bob-pw)   LMTP 127.0.0.1:$lmtp_port
   logs: $demo/{dovecot,server,agent,mta}.log   submitted mail: $demo/mta/
   press Ctrl-C to stop
EOF
  while kill -0 "$agent_pid" 2>/dev/null; do sleep 1; done
fi
