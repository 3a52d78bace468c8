#!/usr/bin/env bash
# mobilesync benchmarks against the peers (issue 9): dsync and mbsync on the
# same generated data, in the same run, on one throwaway Dovecot on loopback.
#
#   bench/run.sh [--quick] [--runs N] [--messages N] [--latency-ms MS]
#                [--scenarios 1,2,3,7] [--tools LIST] [--seed S] [--out DIR] [--keep]
#                [--dovecot-reuse] [--no-warm]
#
#   --quick        1,000 messages x 1 run (default: 10,000 x 3)
#   --latency-ms   also run scenario 7 (1 and 2 through a delaying proxy) with
#                  this round-trip time (half of it added each way)
#   --scenarios    which scenarios (default 1,2,3; 7 added by --latency-ms;
#                  4 = push latency and 5 = plugin overhead run mobilesync's
#                  own programs once)
#   --tools        default: mobilesync,dsync-backup,dsync-sync,dsync-pipe,dsync-imapc,mbsync
#   --out          where results go (default bench/out/<UTC time>): results.jsonl,
#                  report.md, logs
#   --dovecot-reuse  Dovecot's imap-login and imap processes are reused
#                  (service_count = 0), for every tool: what a large site runs
#                  (docs/admin-guide.md 13); default: one process per connection
#   --no-warm      measure from Dovecot's very first login after its start
#                  (default: one unmeasured login by a third user first, as on a
#                  server that is running already)
#
# Installs what it needs on Debian 12 unless MS_SKIP_DEPS=1. Run as root (as the
# rest of the project's scripts): mail belongs to Debian's "mail" user.
# See bench/README.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench="$top/bench"
# shellcheck source=scripts/deps.sh
. "$top/scripts/deps.sh"
BENCH_DEPS=(isync time)   # mbsync, GNU time (for ad-hoc cross-checks); not in MS_DEPS

runs=3 messages=10000 latency_ms= scenarios=1,2,3 seed=9 out= keep=0 reuse=0 warm=1
tools=mobilesync,dsync-backup,dsync-sync,dsync-pipe,dsync-imapc,mbsync
while [ $# -gt 0 ]; do
  case $1 in
    --quick) runs=1 messages=1000 ;;
    --runs) runs=$2; shift ;;
    --messages) messages=$2; shift ;;
    --latency-ms) latency_ms=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
    --tools) tools=$2; shift ;;
    --seed) seed=$2; shift ;;
    --out) out=$2; shift ;;
    --keep) keep=1 ;;
    --dovecot-reuse) reuse=1 ;;
    --no-warm) warm=0 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$latency_ms" ] && [[ ",$scenarios," != *,7,* ]]; then scenarios="$scenarios,7"; fi
if [[ ",$scenarios," == *,7,* ]] && [ -z "$latency_ms" ]; then latency_ms=50; fi
want() { [[ ",$scenarios," == *",$1,"* ]]; }
if { want 2 || want 7; } && [ "$messages" -lt 200 ]; then
  echo "scenarios 2 and 7 change 150 of the messages: --messages must be at least 200" >&2
  exit 2
fi
IFS=, read -r -a tool_list <<<"$tools"

[ "${MS_SKIP_DEPS:-0}" = 1 ] || ms_install_deps "${BENCH_DEPS[@]}"
[ "$(id -u)" -eq 0 ] || { echo "run as root (Dovecot's doveadm -u needs it)" >&2; exit 1; }

out=${out:-$bench/out/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
M="python3 $bench/measure.py"

# ------------------------------------------------------------------ teardown
w=$(mktemp -d /tmp/msb.XXXXXX)   # short: Dovecot's unix sockets live under it
chmod 755 "$w"
dc_pid= proxy_pid= ms_pids=()
teardown() {
  set +e
  local p
  for p in "${ms_pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -n "$proxy_pid" ] && { kill -TERM "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null; }
  [ -n "$dc_pid" ] && { kill -TERM "$dc_pid" 2>/dev/null; wait "$dc_pid" 2>/dev/null; }
  # Interrupted: still leave a report of the runs that completed.
  if [ -s "$out/results.jsonl" ] && [ ! -s "$out/report.md" ]; then
    { echo "## Interrupted run (partial)"; echo; $M report "$out/results.jsonl"; } >"$out/report.md"
  fi
  if [ $keep -eq 1 ]; then echo "kept $w"; else rm -rf "$w"; fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date -u +%H:%M:%S)] $*"; }

# ------------------------------------------------------------------ machine
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc: $(nproc)"
  echo "RAM: $(free -g | awk '/^Mem:/{print $2" GiB"}')"
  echo "kernel: $(uname -r)"
  echo "debian: $(cat /etc/debian_version)"
  echo "dovecot: $(dovecot --version)"
  echo "mbsync: $(mbsync --version)"
  echo "python: $(python3 --version 2>&1)"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "arguments: runs=$runs messages=$messages scenarios=$scenarios latency_ms=${latency_ms:-none} tools=$tools seed=$seed"
  echo "dovecot process reuse: $([ $reuse = 1 ] && echo yes || echo no); warm-up login before each measured run: $([ $warm = 1 ] && echo yes || echo no)"
} | tee "$out/machine.txt"

# ------------------------------------------------------------------ data
# The generated mailbox is cached by (generator hash, seed, size).
gen_hash=$(sha256sum "$bench/gen_mailbox.py" | cut -c1-12)
cache=${MS_BENCH_CACHE:-/var/tmp/msbench-cache}
gen_dir="$cache/$gen_hash-s$seed-n$messages"
new_dir="$cache/$gen_hash-s$seed-new50-at$messages"
if [ ! -f "$gen_dir/.done" ]; then
  log "generating $messages messages (seed $seed) into $gen_dir"
  rm -rf "$gen_dir"
  python3 "$bench/gen_mailbox.py" --seed "$seed" --messages "$messages" --out "$gen_dir"
  touch "$gen_dir/.done"
fi
if [ ! -f "$new_dir/.done" ]; then
  rm -rf "$new_dir"
  python3 "$bench/gen_mailbox.py" --seed "$seed" --first "$messages" --messages 50 --out "$new_dir" >/dev/null
  touch "$new_dir/.done"
fi
echo "mailbox digest: $(python3 "$bench/gen_mailbox.py" --digest "$gen_dir") ($(du -sm --exclude=.done "$gen_dir" | cut -f1) MB on disk)" | tee -a "$out/machine.txt"

# ------------------------------------------------------------------ Dovecot
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
imap_port=$(free_port); imaps_port=$(free_port)
mail_uid=$(id -u mail); mail_gid=$(id -g mail)
conf="$w/dovecot.conf"
mkdir -p "$w/home/A" "$w/home/B" "$w/home/W" "$w/state" "$w/m"
chown "$mail_uid:$mail_gid" "$w/home/A" "$w/home/B" "$w/home/W"
# userdb_mobilesync_enabled: read only by the mobilesync plugin, which only
# mobilesync's runs load (ms/dovecot.conf).
# W: the warm-up login's user (an empty mailbox no tool touches).
printf 'A:{PLAIN}A-pw:%s:%s::%s/home/A::userdb_mobilesync_enabled=yes\nB:{PLAIN}B-pw:%s:%s::%s/home/B::\nW:{PLAIN}W-pw:%s:%s::%s/home/W::\n' \
  "$mail_uid" "$mail_gid" "$w" "$mail_uid" "$mail_gid" "$w" "$mail_uid" "$mail_gid" "$w" >"$w/passwd"
chmod 644 "$w/passwd"  # read by the auth process (user dovecot); test passwords
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$w/key.pem" -out "$w/cert.pem" 2>/dev/null
chmod 600 "$w/key.pem"; chmod 644 "$w/cert.pem"
login_reuse= imap_reuse=
if [ $reuse = 1 ]; then  # as bench/agent_bench's AGENT_BENCH_DOVECOT_REUSE=1
  login_reuse=$'\n  service_count = 0'
  imap_reuse=$'service imap {\n  service_count = 0\n  process_limit = 128\n}'
fi
cat >"$conf" <<CONF
# Throwaway Dovecot for bench/run.sh
base_dir = $w/run
state_dir = $w/state
instance_name = msbench-$imap_port
log_path = $w/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$w/cert.pem
ssl_key = <$w/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %u  # keep the users A and B upper-case
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
# dsync over IMAP (doveadm ... imapc:) talks to user A through this:
imapc_host = localhost
imapc_port = $imaps_port
imapc_ssl = imaps
ssl_client_ca_file = $w/cert.pem
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
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $w/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $w/passwd
}
service imap-login {$login_reuse
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps_port
    ssl = yes
  }
}
$imap_reuse
service anvil {
  unix_listener anvil-auth-penalty {
    path = anvil-auth-penalty-disabled
  }
}
CONF
DA=(doveadm -c "$conf")

# dc_start [RUSAGE_JSON [CONFIG]]: start Dovecot under measure.py serve; wait
# for IMAP(S).
dc_start() {
  local ru=${1:-$w/m/unmeasured-server.json} c=${2:-$conf}
  rm -f "$w/ready"
  $M serve --out "$ru" --ready-port "$imap_port,$imaps_port" --ready-file "$w/ready" \
    -- /usr/sbin/dovecot -F -c "$c" >>"$w/dovecot.out" 2>&1 &
  dc_pid=$!
  local i
  for i in $(seq 1 600); do [ -f "$w/ready" ] && break; sleep 0.05; done
  [ "$(cat "$w/ready" 2>/dev/null)" = ok ] || { echo "Dovecot did not start:"; tail "$w/dovecot.log" "$w/dovecot.out"; exit 1; }
  if [ $warm = 1 ]; then
    $M warm --port "$imap_port" --user W --password W-pw || { echo "Dovecot: warm-up login failed"; tail "$w/dovecot.log"; exit 1; }
  fi
}
dc_stop() {
  [ -n "$dc_pid" ] || return 0
  kill -TERM "$dc_pid"; wait "$dc_pid" || true; dc_pid=
}

proxy_start() {  # proxy_start ONE_WAY_MS [PORT]: delaying proxy in front of PORT (IMAPS)
  rm -f "$w/proxy.port"
  python3 "$bench/delay_proxy.py" --listen 127.0.0.1:0 --target "127.0.0.1:${2:-$imaps_port}" \
    --delay-ms "$1" --port-file "$w/proxy.port" 2>>"$w/proxy.log" &
  proxy_pid=$!
  local i
  for i in $(seq 1 200); do [ -s "$w/proxy.port" ] && break; sleep 0.05; done
  proxy_port=$(cat "$w/proxy.port")
}
proxy_stop() {
  [ -n "$proxy_pid" ] || return 0
  kill -TERM "$proxy_pid"; wait "$proxy_pid" || true; proxy_pid=
}

# ------------------------------------------------------------------ user A
log "preparing user A ($messages messages) and its pristine copy"
mkdir -p "$w/home/A/Maildir"
cp -a "$gen_dir/." "$w/home/A/Maildir/"; rm -f "$w/home/A/Maildir/.done"
chown -R "$mail_uid:$mail_gid" "$w/home/A"
dc_start  # doveadm -u looks users up through Dovecot's auth: it must run
"${DA[@]}" mailbox create -u A Trash Sent Drafts 2>/dev/null || true
"${DA[@]}" mailbox status -u A 'messages vsize' '*'  # builds A's index once, unmeasured
"${DA[@]}" index -u A INBOX
dc_stop
cp -a "$w/home/A" "$w/pristineA"

# ------------------------------------------------------------------ tools
# tool_cmd TOOL PORT: the command that syncs A -> B (PORT: A's IMAPS port as
# the tool sees it, i.e. the proxy's under scenario 7).
mbsync_rc() {  # mbsync_rc PORT > rc
  cat <<RC
IMAPAccount A
Host localhost
Port $1
User A
Pass A-pw
SSLType IMAPS
CertificateFile $w/cert.pem

IMAPStore A
Account A

IMAPAccount B
Host localhost
Port $imaps_port
User B
Pass B-pw
SSLType IMAPS
CertificateFile $w/cert.pem

IMAPStore B
Account B

Channel AB
Far :A:
Near :B:
Patterns *
Create Near
Expunge Both
Sync All
SyncState $w/mbsync-state/
RC
}
tool_cmd() {
  local tool=$1 port=$2
  case $tool in
    dsync-backup) cmd=("${DA[@]}" backup -u A "maildir:$w/home/B/Maildir") ;;
    dsync-sync) cmd=("${DA[@]}" sync -u A "maildir:$w/home/B/Maildir") ;;
    dsync-pipe) cmd=("${DA[@]}" backup -u A env -i /usr/bin/doveadm -c "$conf" dsync-server -u B) ;;
    dsync-imapc) cmd=("${DA[@]}" -o imapc_user=A -o imapc_password=A-pw -o mail_prefetch_count=20
                      -o imapc_port="$port" backup -R -u B imapc:) ;;
    mbsync) mbsync_rc "$port" >"$w/mbsyncrc"; cmd=(mbsync -c "$w/mbsyncrc" -q AB) ;;
    *) echo "unknown tool $tool" >&2; exit 2 ;;
  esac
}
network_tool() { [ "$1" = dsync-imapc ] || [ "$1" = mbsync ] || [ "$1" = mobilesync ]; }

# ------------------------------------------------------------------ mobilesync
# mobilesync plays the same game: user A (the same pristine Maildir) is
# enabled, the agent syncs it to mobilesync-server, whose store plays B; the
# device window is larger than the mailbox, so every message moves, as with
# the peers. Dovecot gets the plugin through a second config file that
# includes the first. Binaries: a build without sanitizers in
# $MS_BENCH_BUILD_DIR (default build-bench/; MS_BENCH_REBUILD=0 reuses it).
ms_wanted() { local t; for t in "${tool_list[@]}"; do [ "$t" = mobilesync ] && return 0; done; return 1; }
ms=$w/ms
ms_setup() {
  msb=${MS_BENCH_BUILD_DIR:-$top/build-bench}
  if [ "${MS_BENCH_REBUILD:-1}" = 1 ] || [ ! -x "$msb/src/sync_agent/mobilesync-agent" ]; then
    log "building mobilesync (no sanitizers) in $msb"
    MS_BUILD_TESTS=0 ms_build "$msb" >"$out/build.log" 2>&1 || { tail -20 "$out/build.log"; exit 1; }
  fi
  ms_bin_agent=$msb/src/sync_agent/mobilesync-agent
  ms_bin_ctl=$msb/src/sync_agent/mobilesyncctl
  ms_bin_server=$msb/src/sync_server/mobilesync-server
  echo "mobilesync: $(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown), built in $msb" |
    tee -a "$out/machine.txt"
  mkdir -p "$ms/modules"
  ms_server_port=$(free_port); ms_api_port=$(free_port)
  # The server's certificate, from a CA of its own (as in production).
  ms_localhost_certs "$ms" "msbench CA" 7
  (umask 077
   openssl rand -hex 32 >"$ms/agent.token"; openssl rand -hex 32 >"$ms/device.token"
   openssl rand -hex 32 >"$ms/trigger.secret"; echo "master-$(openssl rand -hex 8)" >"$ms/master.pw")
  chgrp mail "$ms/trigger.secret"; chmod 640 "$ms/trigger.secret"  # imap runs as "mail"
  local m
  for m in /usr/lib/dovecot/modules/*; do ln -sf "$m" "$ms/modules/"; done
  ln -sf "$msb/src/plugin/.libs/lib20_mobilesync_plugin.so" "$ms/modules/"
  ln -sf "$msb/src/plugin/.libs/lib95_mobilesync_lda_plugin.so" "$ms/modules/"
  echo "mobilesync-agent:{PLAIN}$(cat "$ms/master.pw")" >"$ms/master-users"
  chmod 644 "$ms/master-users"
  ms_conf=$ms/dovecot.conf
  cat >"$ms_conf" <<CONF
# bench/run.sh: the peers' Dovecot plus conf.d/90-mobilesync.conf
!include $conf
mail_plugin_dir = $ms/modules
mail_plugins = \$mail_plugins notify mobilesync
mail_attribute_dict = file:%h/dovecot-attributes
imap_metadata = yes
auth_master_user_separator = *
passdb {
  driver = passwd-file
  args = $ms/master-users
  master = yes
  result_success = continue
}
plugin {
  mobilesync_agent_socket = $ms/agent.sock
  mobilesync_trigger_secret_file = $ms/trigger.secret
}
CONF
  local window=$((messages + 1000))
  [ $window -gt 1000000 ] && window=1000000
  (umask 077
   printf 'bench token_sha256=%s users=A\n' "$(tr -d '\n' <"$ms/agent.token" | sha256sum | cut -d' ' -f1)" >"$ms/agents"
   printf 'A token_sha256=%s address=a@bench.test window=%s\n' \
     "$(tr -d '\n' <"$ms/device.token" | sha256sum | cut -d' ' -f1)" "$window" >"$ms/devices")
}
# ms_configs PORT: the daemons' config files; the agent dials PORT (the
# server's, or the delay proxy's under scenario 7).
ms_configs() {
  cat >"$ms/server.conf" <<EOF
listen = 127.0.0.1:$ms_server_port
tls_cert_file = $ms/server.pem
tls_key_file = $ms/server.key
agents_file = $ms/agents
database = $ms/state/server.db
device_api_listen = 127.0.0.1:$ms_api_port
devices_file = $ms/devices
log_level = ${MS_BENCH_LOG_LEVEL:-info}
EOF
  cat >"$ms/agent.conf" <<EOF
server = 127.0.0.1:$1
server_name = localhost
tls_ca_file = $ms/ca.pem
deployment_token_file = $ms/agent.token
imap = 127.0.0.1:$imap_port
master_user = mobilesync-agent
master_password_file = $ms/master.pw
trigger_secret_file = $ms/trigger.secret
control_socket = $ms/agent.sock
control_group = mail
state_dir = $ms/state/agent
sync_interval = 24h
doveadm_config = $ms_conf
log_level = ${MS_BENCH_LOG_LEVEL:-info}
EOF
}
ms_reset() {  # beside reset_sides: no server store, no agent state
  rm -rf "$ms/state"
  mkdir -p "$ms/state/agent"
  chmod 700 "$ms/state/agent"
}
ms_ctl() { "$ms_bin_ctl" -c "$ms/agent.conf" "$@"; }
# ms_start TAG PORT: mobilesync-server and mobilesync-agent under "measure.py
# serve" (their rusage recorded like Dovecot's), until the agent has shaken
# hands with the server.
ms_start() {
  local tag=$1 i
  ms_configs "$2"
  rm -f "$w/ms-server.ready" "$w/ms-agent.ready" "$ms/agent.sock"
  $M serve --out "$tag-msserver.json" --ready-port "$ms_server_port" --ready-file "$w/ms-server.ready" \
    -- "$ms_bin_server" -c "$ms/server.conf" -F >>"$out/mobilesync-server.log" 2>&1 &
  ms_pids=($!)
  for i in $(seq 1 600); do [ -f "$w/ms-server.ready" ] && break; sleep 0.05; done
  $M serve --out "$tag-agent.json" --ready-path "$ms/agent.sock" --ready-file "$w/ms-agent.ready" \
    -- "$ms_bin_agent" -c "$ms/agent.conf" -F >>"$out/mobilesync-agent.log" 2>&1 &
  ms_pids+=($!)
  for i in $(seq 1 600); do
    ms_ctl --json status 2>/dev/null | grep -q '"state":"connected"' && return 0
    sleep 0.05
  done
  echo "mobilesync did not start:"
  tail -5 "$out/mobilesync-server.log" "$out/mobilesync-agent.log"
  exit 1
}
ms_stop() {  # the agent first, then the server
  local i
  for ((i = ${#ms_pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${ms_pids[$i]}" 2>/dev/null
    wait "${ms_pids[$i]}" || true
  done
  ms_pids=()
}
# The measured command: enable A (initial sync) or ask for a sync, wait for
# it, then until the agent says A is idle with nothing pending.
ms_sync_cmd() {  # ms_sync_cmd ENABLE_FIRST
  cat >"$ms/sync.sh" <<SH
#!/bin/sh
set -e
ctl() { "$ms_bin_ctl" -c "$ms/agent.conf" "\$@"; }
if [ "$1" = 1 ]; then ctl enable A >/dev/null; fi
# The answer to --wait is A's status after the session (and the follow-up
# of an initial sync): when it says idle with nothing pending, done.
case "\$(ctl --json sync A --wait)" in *'"pending_actions":0,"running":false'*) exit 0 ;; esac
i=0
until ctl --json status A | grep -q '"pending_actions":0,"running":false'; do
  i=\$((i + 1)); [ \$i -lt 6000 ] || { echo "not idle after 10 minutes"; exit 1; }
  sleep 0.1
done
SH
  chmod 755 "$ms/sync.sh"
  cmd=("$ms/sync.sh")
  # Without the enable, the measured command is mobilesyncctl itself, as a
  # cron job would run it (mbsync is measured the same way: no shell); its
  # answer must then say idle (ms_measured_run checks), else the run fails.
  if [ "$1" != 1 ]; then cmd=("$ms_bin_ctl" -c "$ms/agent.conf" --json sync A --wait); fi
}
# ms_measured_run SCENARIO RUN ENABLE_FIRST [PROXY_ONE_WAY_MS]
ms_measured_run() {
  local sc=$1 run=$2 enable=$3 delay=${4:-} port=$ms_server_port tag
  order=$((order + 1))
  tag="$w/m/$order"
  dc_start "$tag-server.json" "$ms_conf"
  if [ -n "$delay" ]; then proxy_start "$delay" "$ms_server_port"; port=$proxy_port; fi
  ms_start "$tag" "$port"
  # "3w": the agent has just synced A (its IMAP connection is pooled, as
  # for a daemon that synced within imap_idle_keep); only wall time is its
  # own, the CPU figures include the warm-up.
  if [[ $sc == 3w* ]]; then ms_ctl sync A --wait >/dev/null 2>&1 || true; fi
  ms_sync_cmd "$enable"
  if [ "${cmd[0]}" = "$ms/sync.sh" ]; then
    echo "+ ${cmd[*]}   # $(grep -v '^#' "$ms/sync.sh" | tr '\n' ';')" >>"$out/commands.log"
  else
    echo "+ ${cmd[*]}" >>"$out/commands.log"
  fi
  $M run --out "$tag-ctl.json" -- "${cmd[@]}" >"$tag-ctl.out" 2>&1 || true
  cat "$tag-ctl.out" >>"$out/tool-output.log"
  local idle=1
  if [ "${cmd[0]}" != "$ms/sync.sh" ] &&
     ! grep -q '"pending_actions":0,"running":false' "$tag-ctl.out"; then
    idle=0
  fi
  ms_stop
  proxy_stop
  dc_stop
  $M combine --out "$tag-client.json" --wall "$tag-ctl.json" "$tag-agent.json" "$tag-msserver.json"
  rm -rf "$w/home/B/Maildir"
  $M export-server --db "$ms/state/server.db" --user A --out "$w/home/B/Maildir" >>"$out/verify.log"
  $M verify --a "$w/home/A/Maildir" --b "$w/home/B/Maildir" --flags S --ignore-flags-in Trash \
    --out "$tag-verify.json" >>"$out/verify.log" 2>&1 || {
      echo "  verification FAILED: $(tail -n 3 "$out/verify.log")"; }
  if [ $idle = 0 ]; then  # the measured command ended before the sync did
    echo "  verification FAILED: mobilesyncctl's answer is not idle: $(head -c 300 "$tag-ctl.out")"
    echo '{"ok": false, "error": "mobilesyncctl sync --wait did not end idle"}' >"$tag-verify.json"
  fi
  $M record --jsonl "$out/results.jsonl" --scenario "$sc" --tool mobilesync --run "$run" \
    --order "$order" --messages "$messages" --client "$tag-client.json" \
    --server "$tag-server.json" --verify "$tag-verify.json"
}

# ------------------------------------------------------------------ runs
if ms_wanted || want 4 || want 5; then ms_setup; fi
reset_sides() {  # Dovecot stopped: A back to pristine, B and tool state empty
  rm -rf "$w/home/A" "$w/home/B" "$w/mbsync-state"
  cp -a "$w/pristineA" "$w/home/A"
  mkdir -p "$w/home/B" "$w/mbsync-state"
  chown "$mail_uid:$mail_gid" "$w/home/B"
  if ms_wanted; then ms_reset; fi
}

# apply_changes [TOOL]: on A, unmeasured: 100 flag changes, 50 moves, 50 new.
# For mobilesync through Dovecot with the plugin (the changes are recorded in
# A's action list, as they would be) and the new mail saved by doveadm (the
# peers get the same files copied into cur/: same bytes, same flags).
apply_changes() {
  local MARK_READ MARK_UNREAD MOVE da=("${DA[@]}") f
  if [ "${1:-}" = mobilesync ]; then
    da=(doveadm -c "$ms_conf")
    dc_start "" "$ms_conf"
  else
    dc_start
  fi
  eval "$($M changes --maildir "$w/home/A/Maildir" --seed "$seed" --flags 100 --moves 50)"
  "${da[@]}" flags add -u A '\Seen' mailbox INBOX uid "$MARK_READ"
  "${da[@]}" flags remove -u A '\Seen' mailbox INBOX uid "$MARK_UNREAD"
  "${da[@]}" move -u A Trash mailbox INBOX uid "$MOVE"
  if [ "${1:-}" = mobilesync ]; then
    local uid
    uid=$("${da[@]}" -f flow mailbox status -u A uidnext INBOX | sed 's/.*uidnext=//')
    for f in "$new_dir"/cur/*; do  # one at a time: UIDs in order, from uidnext on
      "${da[@]}" save -u A -m INBOX <"$f"
      case ${f##*:2,} in *S*) "${da[@]}" flags add -u A '\Seen' mailbox INBOX uid "$uid" ;; esac
      uid=$((uid + 1))
    done
  else
    cp -p "$new_dir"/cur/* "$w/home/A/Maildir/cur/"
  fi
  chown -R "$mail_uid:$mail_gid" "$w/home/A/Maildir/cur"
  "${DA[@]}" mailbox status -u A messages INBOX >/dev/null  # Dovecot indexes the new mail
  dc_stop
}

order=0
# measured_run SCENARIO TOOL RUN [PROXY_ONE_WAY_MS]
measured_run() {
  local sc=$1 tool=$2 run=$3 delay=${4:-} port=$imaps_port tag
  if [ "$tool" = mobilesync ]; then
    local enable=0
    [[ $sc == 1* || $sc == 7a* ]] && enable=1
    ms_measured_run "$sc" "$run" "$enable" "$delay"
    return
  fi
  order=$((order + 1))
  tag="$w/m/$order"
  dc_start "$tag-server.json"
  if [ -n "$delay" ]; then proxy_start "$delay"; port=$proxy_port; fi
  tool_cmd "$tool" "$port"
  echo "+ ${cmd[*]}" >>"$out/commands.log"
  $M run --out "$tag-client.json" -- "${cmd[@]}" >>"$out/tool-output.log" 2>&1 || true
  proxy_stop
  dc_stop
  local strip=()
  [ "$tool" = mbsync ] && strip=(--strip-x-tuid)
  $M verify --a "$w/home/A/Maildir" --b "$w/home/B/Maildir" "${strip[@]}" \
    --out "$tag-verify.json" >>"$out/verify.log" 2>&1 || {
      echo "  verification FAILED: $(tail -n 3 "$out/verify.log")"; }
  $M record --jsonl "$out/results.jsonl" --scenario "$sc" --tool "$tool" --run "$run" \
    --order "$order" --messages "$messages" --client "$tag-client.json" \
    --server "$tag-server.json" --verify "$tag-verify.json"
}

# chain TOOL RUN: a fresh B; initial (1); no-change (3); changes on A; incremental (2)
chain() {
  local tool=$1 run=$2
  reset_sides
  measured_run "1 initial" "$tool" "$run"
  want 3 && measured_run "3 no-change" "$tool" "$run"
  if want 3 && [ "$tool" = mobilesync ]; then measured_run "3w no-change, agent warm" "$tool" "$run"; fi
  if want 2; then apply_changes "$tool"; measured_run "2 incremental" "$tool" "$run"; fi
}
# chain_latency TOOL RUN: the same through the delaying proxy (scenario 7)
chain_latency() {
  local tool=$1 run=$2 one_way
  one_way=$(python3 -c "print($latency_ms / 2)")
  reset_sides
  measured_run "7a initial +${latency_ms}ms RTT" "$tool" "$run" "$one_way"
  apply_changes "$tool"
  measured_run "7b incremental +${latency_ms}ms RTT" "$tool" "$run" "$one_way"
}

baseline() {  # Dovecot start + graceful stop with no work: the constant in every server figure
  local run=$1 tag
  order=$((order + 1)); tag="$w/m/$order"
  dc_start "$tag-server.json"
  $M run --out "$tag-client.json" -- true
  dc_stop
  echo '{"ok": true}' >"$tag-verify.json"
  $M record --jsonl "$out/results.jsonl" --scenario "0 baseline" --tool "dovecot idle" --run "$run" \
    --order "$order" --messages 0 --client "$tag-client.json" --server "$tag-server.json" \
    --verify "$tag-verify.json"
}

n=${#tool_list[@]}
for run in $(seq 1 "$runs"); do
  log "batch $run/$runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
  baseline "$run"
  # Alternate: rotate the tool order each batch so no tool always goes first.
  for k in $(seq 0 $((n - 1))); do
    tool=${tool_list[$(((k + run - 1) % n))]}
    if want 1 || want 2 || want 3; then chain "$tool" "$run"; fi
  done
  if want 7; then
    for k in $(seq 0 $((n - 1))); do
      tool=${tool_list[$(((k + run - 1) % n))]}
      network_tool "$tool" && chain_latency "$tool" "$run"
    done
  fi
done

# Scenarios 4 and 5 are mobilesync's alone (the peers do not push: their
# latency is their polling interval; the plugin's cost on delivery has no
# peer counterpart): programs of their own on the real system, run once.
if want 4; then
  log "scenario 4: push latency (bench/e2e_bench)"
  echo "+ $msb/bench/e2e_bench --deliveries 300 --reads 50" >>"$out/commands.log"
  "$msb/bench/e2e_bench" --deliveries 300 --reads 50 2>>"$out/tool-output.log" | tee "$out/scenario4.txt"
fi
if want 5; then
  log "scenario 5: plugin overhead on LMTP delivery (bench/plugin_overhead)"
  echo "+ $msb/bench/plugin_overhead --messages 300 --rounds 2" >>"$out/commands.log"
  "$msb/bench/plugin_overhead" --messages 300 --rounds 2 2>>"$out/tool-output.log" | tee "$out/scenario5.txt"
fi

{
  echo "## Run $(date -u '+%Y-%m-%d %H:%M UTC'): $messages messages, $runs run(s), scenarios $scenarios"
  echo
  echo '```'
  cat "$out/machine.txt"
  echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo '```'
  echo
  [ -s "$out/results.jsonl" ] && $M report "$out/results.jsonl"
  if [ -s "$out/scenario4.txt" ]; then
    printf '\n### 4. Push latency (mobilesync; bench/e2e_bench)\n\n```\n'; cat "$out/scenario4.txt"; echo '```'
  fi
  if [ -s "$out/scenario5.txt" ]; then
    printf '\n### 5. Plugin overhead on LMTP delivery (bench/plugin_overhead)\n\n'; cat "$out/scenario5.txt"
  fi
} >"$out/report.md"
cp "$w/dovecot.log" "$out/dovecot.log" 2>/dev/null || true
log "done: $out/report.md"
cat "$out/report.md"
