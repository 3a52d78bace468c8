#!/usr/bin/env bash
# mobilesync benchmarks against the peers (issue 9): dsync and mbsync on the
# same generated data, in the same run, on one throwaway Dovecot on loopback.
#
#   bench/run.sh [--quick] [--runs N] [--messages N] [--latency-ms MS]
#                [--scenarios 1,2,3,7] [--tools LIST] [--seed S] [--out DIR] [--keep]
#
#   --quick        1,000 messages x 1 run (default: 10,000 x 3)
#   --latency-ms   also run scenario 7 (1 and 2 through a delaying proxy) with
#                  this round-trip time (half of it added each way)
#   --scenarios    which scenarios (default 1,2,3; 7 added by --latency-ms)
#   --tools        default: dsync-backup,dsync-sync,dsync-pipe,dsync-imapc,mbsync
#   --out          where results go (default bench/out/<UTC time>): results.jsonl,
#                  report.md, logs
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

runs=3 messages=10000 latency_ms= scenarios=1,2,3 seed=9 out= keep=0
tools=dsync-backup,dsync-sync,dsync-pipe,dsync-imapc,mbsync
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
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$latency_ms" ] && [[ ",$scenarios," != *,7,* ]]; then scenarios="$scenarios,7"; fi
if [[ ",$scenarios," == *,7,* ]] && [ -z "$latency_ms" ]; then latency_ms=50; fi
want() { [[ ",$scenarios," == *",$1,"* ]]; }
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
dc_pid= proxy_pid=
teardown() {
  set +e
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
mkdir -p "$w/home/A" "$w/home/B" "$w/state" "$w/m"
chown "$mail_uid:$mail_gid" "$w/home/A" "$w/home/B"
printf 'A:{PLAIN}A-pw:%s:%s::%s/home/A::\nB:{PLAIN}B-pw:%s:%s::%s/home/B::\n' \
  "$mail_uid" "$mail_gid" "$w" "$mail_uid" "$mail_gid" "$w" >"$w/passwd"
chmod 644 "$w/passwd"  # read by the auth process (user dovecot); test passwords
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$w/key.pem" -out "$w/cert.pem" 2>/dev/null
chmod 600 "$w/key.pem"; chmod 644 "$w/cert.pem"
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
service imap-login {
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
service anvil {
  unix_listener anvil-auth-penalty {
    path = anvil-auth-penalty-disabled
  }
}
CONF
DA=(doveadm -c "$conf")

# dc_start [RUSAGE_JSON]: start Dovecot under measure.py serve; wait for IMAP(S).
dc_start() {
  local ru=${1:-$w/m/unmeasured-server.json}
  rm -f "$w/ready"
  $M serve --out "$ru" --ready-port "$imap_port,$imaps_port" --ready-file "$w/ready" \
    -- /usr/sbin/dovecot -F -c "$conf" >>"$w/dovecot.out" 2>&1 &
  dc_pid=$!
  local i
  for i in $(seq 1 600); do [ -f "$w/ready" ] && break; sleep 0.05; done
  [ "$(cat "$w/ready" 2>/dev/null)" = ok ] || { echo "Dovecot did not start:"; tail "$w/dovecot.log" "$w/dovecot.out"; exit 1; }
}
dc_stop() {
  [ -n "$dc_pid" ] || return 0
  kill -TERM "$dc_pid"; wait "$dc_pid" || true; dc_pid=
}

proxy_start() {  # proxy_start ONE_WAY_MS: delaying proxy in front of IMAPS
  rm -f "$w/proxy.port"
  python3 "$bench/delay_proxy.py" --listen 127.0.0.1:0 --target "127.0.0.1:$imaps_port" \
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
network_tool() { [ "$1" = dsync-imapc ] || [ "$1" = mbsync ]; }

# ==================================================================
# MOBILESYNC HOOK (issue 9, mobilesync half) -- NOT YET WIRED (issue 8)
# ==================================================================
# run_mobilesync_<scenario> (initial = 1, incremental = 2, nochange = 3,
# latency = 7): skipped until mobilesync's end-to-end sync exists. Each must,
# as one measured run like measured_run does:
#   1. enable user A for mobilesync (passwd-file extra field
#      userdb_mobilesync_enabled=yes, window N = $messages so the whole
#      mailbox lives remotely; load the plugin: mail_plugins = $mail_plugins
#      notify mobilesync) -- the remote mobilesync-server's store plays B;
#   2. start mobilesync-server and mobilesync-agent under "$M serve" (so their
#      rusage is recorded like Dovecot's; for 7, the agent dials the server
#      through delay_proxy.py);
#   3. run the measured command: mobilesyncctl sync A --wait (for 2, after
#      apply_changes; for 3, with nothing changed), and wait for convergence
#      (mobilesyncctl status A --json says idle, no pending actions);
#   4. verify: export the server's view of the mailbox as a Maildir (or read it
#      through the device API) and "$M verify" it against A; "$M record" it;
#   5. then add "mobilesync" to tool_list so it rotates with the peers.
run_mobilesync_initial() { echo "mobilesync: not yet wired (issue 8)"; return 0; }
run_mobilesync_incremental() { echo "mobilesync: not yet wired (issue 8)"; return 0; }
run_mobilesync_nochange() { echo "mobilesync: not yet wired (issue 8)"; return 0; }
run_mobilesync_latency() { echo "mobilesync: not yet wired (issue 8)"; return 0; }

# ------------------------------------------------------------------ runs
reset_sides() {  # Dovecot stopped: A back to pristine, B and tool state empty
  rm -rf "$w/home/A" "$w/home/B" "$w/mbsync-state"
  cp -a "$w/pristineA" "$w/home/A"
  mkdir -p "$w/home/B" "$w/mbsync-state"
  chown "$mail_uid:$mail_gid" "$w/home/B"
}

apply_changes() {  # on A, unmeasured: 100 flag changes, 50 moves, 50 new
  local MARK_READ MARK_UNREAD MOVE
  dc_start
  eval "$($M changes --maildir "$w/home/A/Maildir" --seed "$seed" --flags 100 --moves 50)"
  "${DA[@]}" flags add -u A '\Seen' mailbox INBOX uid "$MARK_READ"
  "${DA[@]}" flags remove -u A '\Seen' mailbox INBOX uid "$MARK_UNREAD"
  "${DA[@]}" move -u A Trash mailbox INBOX uid "$MOVE"
  cp -p "$new_dir"/cur/* "$w/home/A/Maildir/cur/"
  chown -R "$mail_uid:$mail_gid" "$w/home/A/Maildir/cur"
  "${DA[@]}" mailbox status -u A messages INBOX >/dev/null  # Dovecot indexes the new mail
  dc_stop
}

order=0
# measured_run SCENARIO TOOL RUN [PROXY_ONE_WAY_MS]
measured_run() {
  local sc=$1 tool=$2 run=$3 delay=${4:-} port=$imaps_port tag
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
  if want 2; then apply_changes; measured_run "2 incremental" "$tool" "$run"; fi
}
# chain_latency TOOL RUN: the same through the delaying proxy (scenario 7)
chain_latency() {
  local tool=$1 run=$2 one_way
  one_way=$(python3 -c "print($latency_ms / 2)")
  reset_sides
  measured_run "7a initial +${latency_ms}ms RTT" "$tool" "$run" "$one_way"
  apply_changes
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
  # mobilesync: one function per scenario, skipped until issue 8 wires it.
  for s in initial incremental nochange latency; do "run_mobilesync_$s"; done
done

{
  echo "## Run $(date -u '+%Y-%m-%d %H:%M UTC'): $messages messages, $runs run(s), scenarios $scenarios"
  echo
  echo '```'
  cat "$out/machine.txt"
  echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo '```'
  echo
  $M report "$out/results.jsonl"
} >"$out/report.md"
cp "$w/dovecot.log" "$out/dovecot.log" 2>/dev/null || true
log "done: $out/report.md"
cat "$out/report.md"
