#!/usr/bin/env bash
# mobilesync demo: builds if needed, starts a throwaway Dovecot on loopback
# ports with the mobilesync plugin, and shows the plugin at work.
#
#   scripts/demo.sh          run the demo, then tear everything down
#   scripts/demo.sh --keep   leave it running to explore (Ctrl-C tears down)
#
# Installs what it needs on Debian 12 (apt-get) unless MS_SKIP_DEPS=1.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/deps.sh
. "$top/scripts/deps.sh"
keep=0
[ "${1:-}" = "--keep" ] && keep=1

[ "${MS_SKIP_DEPS:-0}" = 1 ] || ms_install_deps
build=${MS_DEMO_BUILD_DIR:-$top/build-demo}
echo "== building in $build"
ms_build "$build" >/dev/null

demo=$(mktemp -d /tmp/msdemo.XXXXXX)
chmod 755 "$demo"  # Dovecot's auth process (user dovecot) reads the passwd file
pids=()
teardown() {
  echo "== tearing down"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || true
  done
  [ "${MS_KEEP_TMP:-0}" = 1 ] || rm -rf "$demo"
}
trap teardown EXIT
trap 'exit 130' INT TERM

run() { echo "+ $*"; "$@"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
imap_port=$(free_port); lmtp_port=$(free_port)
mkdir -p "$demo/modules" "$demo/home/alice"
chown mail:mail "$demo/home/alice" 2>/dev/null || true
for m in /usr/lib/dovecot/modules/*; do ln -s "$m" "$demo/modules/"; done
ln -sf "$build/src/plugin/.libs/lib20_mobilesync_plugin.so" "$demo/modules/"
ln -sf "$build/src/plugin/.libs/lib95_mobilesync_lda_plugin.so" "$demo/modules/"
if [ "$(id -u)" -eq 0 ]; then uid=$(id -u mail); gid=$(id -g mail); else uid=$(id -u); gid=$(id -g); fi
echo "alice:{PLAIN}alice-pw:$uid:$gid::$demo/home/alice::userdb_mobilesync_enabled=yes" >"$demo/passwd"
chmod 644 "$demo/passwd"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -keyout "$demo/key.pem" -out "$demo/cert.pem" 2>/dev/null
chmod 600 "$demo/key.pem"
cat >"$demo/dovecot.conf" <<CONF
base_dir = $demo/run
state_dir = $demo/state
instance_name = msdemo-$imap_port
log_path = $demo/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl_cert = <$demo/cert.pem
ssl_key = <$demo/key.pem
disable_plaintext_auth = no
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_plugin_dir = $demo/modules
mail_plugins = \$mail_plugins notify mobilesync
protocol lmtp {
  mail_plugins = \$mail_plugins mobilesync_lda
}
mail_attribute_dict = file:%h/dovecot-attributes
imap_metadata = yes
mail_debug = yes
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
echo "== starting Dovecot (IMAP 127.0.0.1:$imap_port, LMTP 127.0.0.1:$lmtp_port)"
setsid /usr/sbin/dovecot -F -c "$demo/dovecot.conf" >"$demo/dovecot.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
  (exec 3<>/dev/tcp/127.0.0.1/"$imap_port") 2>/dev/null && break
  sleep 0.05
done

echo "== delivering a message to alice over LMTP"
python3 - "$lmtp_port" <<'PY'
import smtplib, sys
with smtplib.LMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.sendmail("bob@example.test", ["alice"],
               "From: bob@example.test\r\nTo: alice@example.test\r\nSubject: hello from the demo\r\n\r\nHi Alice!\r\n")
PY
echo "== alice's INBOX over IMAP"
python3 - "$imap_port" <<'PY'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice", "alice-pw")
m.select("INBOX")
typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
for part in data:
    if isinstance(part, tuple):
        print("  ", part[1].decode().strip())
m.logout()
PY
echo "== what the mobilesync plugin logged"
grep 'mobilesync:' "$demo/dovecot.log" | sed 's/^/   /'

if [ $keep -eq 1 ]; then
  echo "== running; Dovecot config: $demo/dovecot.conf  (log: $demo/dovecot.log)"
  echo "   IMAP: 127.0.0.1:$imap_port (alice / alice-pw)   LMTP: 127.0.0.1:$lmtp_port"
  echo "   press Ctrl-C to stop"
  while kill -0 "${pids[0]}" 2>/dev/null; do sleep 1; done
fi
