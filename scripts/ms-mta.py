#!/usr/bin/python3
"""A stand-in for the organisation's MTA on a test or demo machine.

Dovecot delivers with LMTP; the reference server mails trigger messages over
SMTP and the agent submits mail composed on the device through a sendmail
program. A real deployment has Postfix or Exim in between; the tests and the
demo have this instead (Python 3 and Debian's python3-aiosmtpd only):

  ms-mta.py smtpd --listen HOST:PORT --lmtp HOST:PORT --local-domain DOMAIN --spool DIR
      an SMTP server: recipients in DOMAIN (or without a domain) are delivered
      to Dovecot over LMTP as their local part ("alice@example.test" ->
      Dovecot user "alice"); any other recipient is accepted and only
      recorded in DIR.

  ms-mta.py sendmail [-i] [-oi] [-t] [-f FROM] [-F NAME] [--] [RCPT...]
      the sendmail program (message on stdin), configured by the environment:
      MS_MTA_LMTP=HOST:PORT, MS_MTA_LOCAL_DOMAIN, MS_MTA_SPOOL. It records the
      message in the spool (NNNN-sendmail.eml plus a line in sendmail.log) and
      delivers local recipients over LMTP. Exit 0, or 75 (EX_TEMPFAIL) when
      LMTP failed, 64 on a usage error.

Every message handled is logged as one line to stderr and appended to
SPOOL/mta.log: "<mode> from=<f> to=<r,...> local=<u,...> subject=<s>".
"""
import asyncio
import email
import email.policy
import email.utils
import os
import smtplib
import sys
import time


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def local_user(address, domain):
    """The Dovecot user for a local address, else None."""
    address = address.strip().strip("<>")
    local, at, dom = address.rpartition("@")
    if not at:
        return address or None
    return local if dom.lower() == domain.lower() else None


def subject_of(data):
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    return (msg.get("Subject") or "").replace("\n", " ").replace("\r", "")


def record(spool, mode, data, sender, rcpts, local):
    os.makedirs(spool, exist_ok=True)
    name = "%d.%06d-%d-%s.eml" % (int(time.time()), int(time.time() * 1e6) % 1000000,
                                  os.getpid(), mode)
    tmp = os.path.join(spool, "." + name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(spool, name))
    line = "%s from=%s to=%s local=%s subject=%s" % (
        mode, sender or "<>", ",".join(rcpts), ",".join(local), subject_of(data))
    with open(os.path.join(spool, "mta.log"), "a") as f:
        f.write(line + "\n")
    if mode == "sendmail":
        with open(os.path.join(spool, "sendmail.log"), "a") as f:
            f.write(line + "\n")
    print("ms-mta: " + line, file=sys.stderr, flush=True)


def lmtp_deliver(lmtp, sender, users, data):
    """Delivers to Dovecot; raises on any refusal."""
    host, port = split_hostport(lmtp)
    with smtplib.LMTP(host, port, timeout=30) as conn:
        refused = conn.sendmail(sender or "<>", users, data)
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)


class Relay:
    def __init__(self, lmtp, domain, spool):
        self.lmtp, self.domain, self.spool = lmtp, domain, spool

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        users = [u for u in (local_user(r, self.domain) for r in envelope.rcpt_tos) if u]
        try:
            if users:
                await asyncio.get_running_loop().run_in_executor(
                    None, lmtp_deliver, self.lmtp, envelope.mail_from, users, data)
        except Exception as e:  # noqa: BLE001 - reported to the SMTP client
            print("ms-mta: LMTP delivery failed: %r" % (e,), file=sys.stderr, flush=True)
            return "451 4.3.0 LMTP delivery failed"
        record(self.spool, "smtpd", data, envelope.mail_from, envelope.rcpt_tos, users)
        return "250 2.0.0 OK"


def smtpd(argv):
    import argparse
    from aiosmtpd.smtp import SMTP
    p = argparse.ArgumentParser(prog="ms-mta.py smtpd")
    p.add_argument("--listen", required=True)
    p.add_argument("--lmtp", required=True)
    p.add_argument("--local-domain", required=True)
    p.add_argument("--spool", required=True)
    a = p.parse_args(argv)
    host, port = split_hostport(a.listen)
    relay = Relay(a.lmtp, a.local_domain, a.spool)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(relay, hostname="relay.example.test", decode_data=False,
                     enable_SMTPUTF8=True),
        host=host, port=port))
    print("ms-mta: smtpd listening on %s, LMTP %s, local domain %s" %
          (a.listen, a.lmtp, a.local_domain), file=sys.stderr, flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0


def sendmail(argv):
    sender, rcpts, from_headers = None, [], False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rcpts.extend(argv[i + 1:])
            break
        if arg in ("-i", "-oi", "-odi", "-oem", "-Am"):
            pass
        elif arg == "-t":
            from_headers = True
        elif arg in ("-f", "-F", "-r"):
            i += 1
            if i >= len(argv):
                print("sendmail: %s needs a value" % arg, file=sys.stderr)
                return 64
            if arg != "-F":
                sender = argv[i]
        elif arg.startswith("-f") or arg.startswith("-r"):
            sender = arg[2:]
        elif arg.startswith("-F"):
            pass
        elif arg.startswith("-"):
            print("sendmail: unknown option %s" % arg, file=sys.stderr)
            return 64
        else:
            rcpts.append(arg)
        i += 1
    data = sys.stdin.buffer.read()
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    if from_headers:
        for h in ("To", "Cc", "Bcc"):
            rcpts.extend(a for _, a in email.utils.getaddresses(msg.get_all(h, [])) if a)
    if "Bcc" in msg:
        del msg["Bcc"]
        data = msg.as_bytes()
    if not rcpts:
        print("sendmail: no recipients", file=sys.stderr)
        return 64
    spool = os.environ.get("MS_MTA_SPOOL", ".")
    domain = os.environ.get("MS_MTA_LOCAL_DOMAIN", "example.test")
    lmtp = os.environ.get("MS_MTA_LMTP", "")
    users = [u for u in (local_user(r, domain) for r in rcpts) if u]
    if users and lmtp:
        try:
            lmtp_deliver(lmtp, sender, users, data)
        except Exception as e:  # noqa: BLE001
            print("sendmail: LMTP delivery failed: %r" % (e,), file=sys.stderr)
            return 75
    record(spool, "sendmail", data, sender, rcpts, users if lmtp else [])
    return 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("smtpd", "sendmail"):
        print(__doc__, file=sys.stderr)
        return 64
    return (smtpd if sys.argv[1] == "smtpd" else sendmail)(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
