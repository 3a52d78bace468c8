#!/usr/bin/env python3
"""Measurement helper for bench/run.sh (Python 3 standard library only).

  measure.py run   --out F.json -- CMD...    run CMD, record wall time and the
                                             rusage of CMD's whole process tree
  measure.py serve --out F.json (--ready-port P[,P] | --ready-path PATH)
                   --ready-file R -- CMD...  run a server (Dovecot) until SIGTERM,
                                             forward it, reap the whole tree,
                                             record its rusage
  measure.py verify --a MAILDIR --b MAILDIR [--strip-x-tuid] [--flags S]
                    [--ignore-flags-in BOX] [--out F.json]           B must equal A: per mailbox, same
                                             messages (bytes) with the same flags
                                             (only the system flags named by
                                             --flags, default all)
  measure.py combine --out F.json --wall W.json PART.json...
                                             one "client" record for a tool made
                                             of several processes (mobilesync:
                                             mobilesyncctl's wall time, CPU summed
                                             over the parts, the largest peak RSS)
  measure.py export-server --db SERVER.DB --user U --out MAILDIR
                                             the mobilesync-server's view of U as a
                                             Maildir (INBOX, .Trash), for verify
  measure.py changes --maildir A_MAILDIR --seed S --flags 100 --moves 50
                                             pick the UIDs to change (prints shell
                                             assignments)
  measure.py report  RESULTS.jsonl           markdown tables, medians (min-max)
  measure.py warm --port P --user U --password PW
                                             one IMAP LOGIN + LOGOUT (a started
                                             Dovecot made to look like a running one)

How resource use is measured: the measuring process makes itself a child
subreaper (prctl PR_SET_CHILD_SUBREAPER), starts the command in a new session
under GNU time, and reaps the command and every descendant (orphans are
re-parented to it). The figures reported are GNU time's: CPU = %U + %S
and peak RSS = %M, over the command and the descendants it waited for (for
Dovecot: the master and every process it started and reaped). Our own
getrusage(RUSAGE_CHILDREN) is kept as tree_cpu_s, a cross-check that also
counts orphans (it adds ~0.1 s of fork-from-Python overhead). Peak RSS is %M:
the largest single process among the command and the descendants it waited
for. (Not our own ru_maxrss: Linux carries the RSS high-water mark of the
forking process across exec, so anything started straight from Python shows
at least Python's ~20 MB; GNU time's own ~2 MB is the floor instead.)
For Dovecot the tree is the master and everything it started (config, log,
anvil, auth, imap-login, imap, stats, ...): Dovecot is restarted for every
measured run and stopped gracefully (SIGTERM) after it, so its figures cover
exactly that run (plus a constant start/stop cost, measured on its own as the
"dovecot idle" baseline).
"""

import ctypes
import hashlib
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_all(deadline=None, pgid=None):
    """Wait for every child (and re-parented orphan); SIGKILL after deadline."""
    killed = False
    reaped = 0
    while True:
        try:
            flags = 0 if deadline is None or killed else os.WNOHANG
            pid, _ = os.waitpid(-1, flags)
        except ChildProcessError:
            return killed, reaped
        if pid:
            reaped += 1
        if pid == 0:
            if time.monotonic() > deadline:
                if pgid:
                    try:
                        os.killpg(pgid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                # orphans outside the group
                for p in children_of(os.getpid()):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                killed = True
            else:
                time.sleep(0.02)


def children_of(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                if int(st.rsplit(")", 1)[1].split()[1]) == ppid:
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


TIME = "/usr/bin/time"
TIME_FMT = "%e %U %S %M"


def timed(cmd, tfile):
    return [TIME, "-f", TIME_FMT, "-o", tfile] + cmd


def read_time(tfile):
    """GNU time's output: last line 'wall user sys maxrss_kb'."""
    try:
        with open(tfile) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        e, u, s_, m = lines[-1].split()
        return {"time_wall_s": float(e), "cpu_s": float(u) + float(s_), "maxrss_kb": int(m)}
    except (OSError, ValueError, IndexError):
        return {}


def rusage_dict():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"tree_user_s": r.ru_utime, "tree_sys_s": r.ru_stime,
            "tree_cpu_s": r.ru_utime + r.ru_stime, "ru_maxrss_kb": r.ru_maxrss}


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cmd_run(argv):
    out = argv[argv.index("--out") + 1]
    cmd = argv[argv.index("--") + 1:]
    subreaper()
    la = loadavg()
    tfile = out + ".time"
    t0 = time.monotonic()
    p = subprocess.Popen(timed(cmd, tfile), start_new_session=True)
    rc = p.wait()
    wall = time.monotonic() - t0
    reap_all(deadline=time.monotonic() + 10, pgid=p.pid)
    rec = {"cmd": cmd, "rc": rc, "wall_s": wall, "loadavg": la}
    rec.update(rusage_dict())
    rec.update(read_time(tfile))
    with open(out, "w") as f:
        json.dump(rec, f)
    return rc


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def cmd_serve(argv):
    out = argv[argv.index("--out") + 1]
    ports = ([int(p) for p in argv[argv.index("--ready-port") + 1].split(",")]
             if "--ready-port" in argv else [])
    ready_path = argv[argv.index("--ready-path") + 1] if "--ready-path" in argv else None
    ready_file = argv[argv.index("--ready-file") + 1]
    cmd = argv[argv.index("--") + 1:]
    subreaper()
    stop = {"sig": False}

    def on_term(signum, frame):
        stop["sig"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    tfile = out + ".time"
    p = subprocess.Popen(timed(cmd, tfile), start_new_session=True)
    deadline = time.monotonic() + 30
    def ready():
        return all(port_open(pt) for pt in ports) and (ready_path is None or
                                                       os.path.exists(ready_path))
    while not ready():
        if p.poll() is not None or time.monotonic() > deadline or stop["sig"]:
            break
        time.sleep(0.02)
    ok = p.poll() is None and ready()
    with open(ready_file, "w") as f:
        f.write("ok\n" if ok else "failed\n")
    while not stop["sig"] and p.poll() is None:
        time.sleep(0.05)
    t0 = time.monotonic()
    if p.poll() is None:
        # SIGTERM the server itself (GNU time's child), not GNU time.
        for c in children_of(p.pid) or [p.pid]:
            os.kill(c, signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    killed, orphans = reap_all(deadline=time.monotonic() + 10, pgid=p.pid)
    rec = {"cmd": cmd, "rc": p.returncode, "stop_s": time.monotonic() - t0,
           "killed_stragglers": killed, "orphans_reaped": orphans}
    rec.update(rusage_dict())
    rec.update(read_time(tfile))
    with open(out, "w") as f:
        json.dump(rec, f)
    return 0 if ok else 1


def cmd_warm(argv):
    """One IMAP LOGIN and LOGOUT on 127.0.0.1:PORT, so that a freshly
    started Dovecot has spawned what a running one has (config, auth, the
    login processes kept under process reuse) before a measured run."""
    port = int(argv[argv.index("--port") + 1])
    user = argv[argv.index("--user") + 1]
    password = argv[argv.index("--password") + 1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        if not f.readline().startswith(b"* OK"):
            print("warm: no IMAP greeting", file=sys.stderr)
            return 1
        for tag, line in ((b"w1", b"LOGIN %s %s" % (user.encode(), password.encode())),
                          (b"w2", b"LOGOUT")):
            s.sendall(tag + b" " + line + b"\r\n")
            while True:
                r = f.readline()
                if not r:
                    print("warm: connection closed", file=sys.stderr)
                    return 1
                if r.startswith(tag + b" "):
                    break
            if not r.startswith(tag + b" OK"):
                print("warm: %s" % r.decode(errors="replace").strip(), file=sys.stderr)
                return 1
    return 0


# ------------------------------------------------------------------ verify

TUID_RE = re.compile(rb"^X-TUID: [^\n]*\n", re.M)


def mailboxes(maildir):
    """{mailbox name: Maildir path} for Dovecot's maildir++ layout."""
    out = {}
    if os.path.isdir(os.path.join(maildir, "cur")):
        out["INBOX"] = maildir
    if os.path.isdir(maildir):
        for d in os.listdir(maildir):
            if d.startswith(".") and d not in (".", "..") and \
                    os.path.isdir(os.path.join(maildir, d, "cur")):
                out[d[1:]] = os.path.join(maildir, d)
    return out


def messages(path, strip_tuid, keep_flags=None):
    """Sorted list of (sha256 of content, size, flags) of one Maildir."""
    out = []
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        for fn in os.listdir(d):
            with open(os.path.join(d, fn), "rb") as f:
                data = f.read()
            if strip_tuid:
                head, sep, body = data.partition(b"\n\n")
                head = TUID_RE.sub(b"", head + b"\n")[:-1]
                data = head + sep + body
            flags = fn.rsplit(":2,", 1)[1] if ":2," in fn else ""
            flags = "".join(sorted(c for c in flags if c.isupper() and  # system flags
                                   (keep_flags is None or c in keep_flags)))
            out.append((hashlib.sha256(data).hexdigest(), len(data), flags))
    return sorted(out)


def cmd_verify(argv):
    a = argv[argv.index("--a") + 1]
    b = argv[argv.index("--b") + 1]
    strip = "--strip-x-tuid" in argv
    keep = argv[argv.index("--flags") + 1] if "--flags" in argv else None
    # mobilesync keeps one state per message: in Trash, read or not is not kept.
    no_flags = argv[argv.index("--ignore-flags-in") + 1] if "--ignore-flags-in" in argv else None
    out = argv[argv.index("--out") + 1] if "--out" in argv else None
    ma, mb = mailboxes(a), mailboxes(b)
    problems, summary = [], {}
    for name in sorted(set(ma) | set(mb)):
        k = "" if name == no_flags else keep
        la = messages(ma[name], False, k) if name in ma else []
        lb = messages(mb[name], strip, k) if name in mb else []
        if not la and not lb:
            continue
        summary[name] = {"a": len(la), "b": len(lb), "a_bytes": sum(x[1] for x in la),
                         "b_bytes": sum(x[1] for x in lb),
                         "a_seen": sum("S" in x[2] for x in la),
                         "b_seen": sum("S" in x[2] for x in lb)}
        if la != lb:
            sa, sb = set(la), set(lb)
            only_a, only_b = sa - sb, sb - sa
            problems.append("%s: A %d msgs / B %d msgs; %d only in A, %d only in B (e.g. %s | %s)"
                            % (name, len(la), len(lb), len(only_a), len(only_b),
                               sorted(only_a)[:1], sorted(only_b)[:1]))
    rec = {"ok": not problems, "problems": problems, "mailboxes": summary}
    if out:
        with open(out, "w") as f:
            json.dump(rec, f)
    tot = sum(v["a"] for v in summary.values())
    totb = sum(v["a_bytes"] for v in summary.values())
    print("verify: %s: %d messages, %d bytes in %s%s" %
          ("OK" if not problems else "FAILED", tot, totb,
           ", ".join("%s=%d/%d" % (k, v["a"], v["b"]) for k, v in summary.items()),
           "".join("\n  " + p for p in problems)))
    return 0 if not problems else 1


# ------------------------------------------------------------------ mobilesync

def cmd_combine(argv):
    """mobilesync is three processes: the measured command (mobilesyncctl,
    whose wall time is the run's) and the two daemons doing the work."""
    out = argv[argv.index("--out") + 1]
    wall = argv[argv.index("--wall") + 1]
    parts = [a for a in argv[argv.index("--wall") + 2:]]
    with open(wall) as f:
        rec = json.load(f)
    rec["parts"] = {}
    cpu, rss = rec.get("cpu_s", 0.0), rec.get("maxrss_kb", 0)
    for p in parts:
        with open(p) as f:
            part = json.load(f)
        rec["parts"][os.path.basename(p)] = part
        cpu += part.get("cpu_s", 0.0)
        rss = max(rss, part.get("maxrss_kb", 0))
        if part.get("rc") not in (0, None, -15):
            rec["rc"] = rec.get("rc") or 1  # a daemon that failed fails the run
    rec["cpu_s"], rec["maxrss_kb"] = cpu, rss
    with open(out, "w") as f:
        json.dump(rec, f)
    return 0


def cmd_export_server(argv):
    """Writes what mobilesync-server holds for a user as a Maildir: messages
    in the window, INBOX (\\Seen when read) or .Trash. The server stores what
    IMAP sent (CRLF); Dovecot's maildir files have LF line ends."""
    import sqlite3
    db = argv[argv.index("--db") + 1]
    user = argv[argv.index("--user") + 1]
    out = argv[argv.index("--out") + 1]
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    rows = con.execute("SELECT id, state, body FROM messages WHERE user = ? AND residence = 0",
                       (user,)).fetchall()
    boxes = {0: out, 1: out, 2: os.path.join(out, ".Trash")}
    for d in set(boxes.values()):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
    n = 0
    for rid, state, body in rows:
        if state not in boxes or body is None:
            continue
        flags = "S" if state == 1 else ""
        with open(os.path.join(boxes[state], "cur", "%d.server:2,%s" % (rid, flags)), "wb") as f:
            f.write(bytes(body).replace(b"\r\n", b"\n"))
        n += 1
    print("export-server: %d messages of %s" % (n, user))
    return 0


# ------------------------------------------------------------------ changes

def cmd_changes(argv):
    import random
    maildir = argv[argv.index("--maildir") + 1]
    seed = int(argv[argv.index("--seed") + 1])
    nflags = int(argv[argv.index("--flags") + 1])
    nmoves = int(argv[argv.index("--moves") + 1])
    uids = {}
    with open(os.path.join(maildir, "dovecot-uidlist"), "rb") as f:
        f.readline()
        for line in f:
            left, _, name = line.decode().rstrip("\n").partition(":")
            uids[int(left.split()[0])] = name
    rng = random.Random("changes-%d" % seed)
    picked = rng.sample(sorted(uids), nflags + nmoves)
    flag_uids, move_uids = sorted(picked[:nflags]), sorted(picked[nflags:])
    # Flags are not in the uidlist's base names: look the files up.
    names = {}
    for sub in ("cur", "new"):
        for fn in os.listdir(os.path.join(maildir, sub)):
            names[fn.split(":2,")[0]] = fn.rsplit(":2,", 1)[1] if ":2," in fn else ""
    mark_read = [u for u in flag_uids if "S" not in names.get(uids[u].split(":2,")[0], "")]
    mark_unread = [u for u in flag_uids if u not in mark_read]
    j = lambda l: ",".join(map(str, l)) or "0"
    print("MARK_READ=%s" % j(mark_read))
    print("MARK_UNREAD=%s" % j(mark_unread))
    print("MOVE=%s" % j(move_uids))
    return 0


# ------------------------------------------------------------------ record

def cmd_record(argv):
    """Append one measured run (client, server and verify JSON files) to a JSONL."""
    def arg(k, default=None):
        return argv[argv.index(k) + 1] if k in argv else default

    def load(path):
        if not path or not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    rec = {"scenario": arg("--scenario"), "tool": arg("--tool"), "run": int(arg("--run")),
           "order": int(arg("--order", "0")), "messages": int(arg("--messages", "0")),
           "client": load(arg("--client")), "server": load(arg("--server"))}
    v = load(arg("--verify"))
    rec["verify"] = v
    rec["verified"] = bool(v and v.get("ok")) and rec["client"] is not None and rec["client"]["rc"] == 0
    with open(arg("--jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")
    c = rec["client"] or {}
    s = rec["server"] or {}
    print("  %-26s %-13s run %d: wall %6.2f s  client cpu %6.2f s rss %5.0f MB  "
          "dovecot cpu %6.2f s rss %4.0f MB  %s" % (
              rec["scenario"], rec["tool"], rec["run"], c.get("wall_s", 0), c.get("cpu_s", 0),
              c.get("maxrss_kb", 0) / 1024, s.get("cpu_s", 0), s.get("maxrss_kb", 0) / 1024,
              "verified" if rec["verified"] else "NOT VERIFIED"))
    return 0


# ------------------------------------------------------------------ report

def fmt(vals, scale=1.0, digits=2):
    vals = [v * scale for v in vals if v is not None]
    if not vals:
        return "-"
    med = statistics.median(vals)
    if len(vals) == 1:
        return "%.*f" % (digits, med)
    return "%.*f (%.*f–%.*f)" % (digits, med, digits, min(vals), digits, max(vals))


def cmd_report(argv):
    recs = []
    with open(argv[0]) as f:
        for line in f:
            if line.strip():
                recs.append(json.loads(line))
    groups = {}
    for r in recs:
        groups.setdefault((r["scenario"], r["tool"]), []).append(r)
    print("| scenario | tool | runs ok | wall s | client CPU s | client peak RSS MB "
          "| Dovecot CPU s | Dovecot peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for (sc, tool), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[1][0]["order"])):
        ok = sum(1 for r in rs if r.get("verified"))
        print("| %s | %s | %d/%d | %s | %s | %s | %s | %s |" % (
            sc, tool, ok, len(rs),
            fmt([r["client"]["wall_s"] for r in rs]),
            fmt([r["client"]["cpu_s"] for r in rs]),
            fmt([r["client"]["maxrss_kb"] for r in rs], 1 / 1024, 0),
            fmt([r["server"]["cpu_s"] if r.get("server") else None for r in rs]),
            fmt([r["server"]["maxrss_kb"] if r.get("server") else None for r in rs], 1 / 1024, 0)))
    las = [r["client"]["loadavg"][0] for r in recs]
    if las:
        print("\nLoad average (1 min) at the start of the measured runs: median %.1f, min %.1f, max %.1f"
              % (statistics.median(las), min(las), max(las)))
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    sub, argv = sys.argv[1], sys.argv[2:]
    return {"run": cmd_run, "serve": cmd_serve, "verify": cmd_verify,
            "changes": cmd_changes, "record": cmd_record, "report": cmd_report,
            "combine": cmd_combine, "export-server": cmd_export_server,
            "warm": cmd_warm}[sub](argv)


if __name__ == "__main__":
    sys.exit(main())
