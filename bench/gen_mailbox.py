#!/usr/bin/env python3
"""Seeded, deterministic generator of a realistic Maildir for the benchmarks.

    bench/gen_mailbox.py --messages 10000 --seed 9 --out DIR
    bench/gen_mailbox.py --messages 50 --first 10000 --seed 9 --out DIR   # 50 newer ones
    bench/gen_mailbox.py --digest DIR                                    # sha256 of a tree

Python 3 standard library only. Message i depends only on (seed, i), so the
1,000-message mailbox is a prefix of the 10,000-message one, and the same
arguments give the same bytes, file names and mtimes on every run.

Mix (per message, drawn from the message's own RNG):
  * ~86.5 % plain text, 2-20 KB (log-uniform), one of several charsets and
    transfer encodings;
  * ~11.5 % HTML newsletters/replies as multipart/alternative (text + HTML);
  * ~2 % multipart/mixed with a base64 attachment of 100 KB-2 MB.
10,000 messages come to about 240 MB. Headers: Return-Path, 2-4 Received,
From/To/Cc with RFC 2047 display names, Subject with RFC 2047 encoded words,
Date, Message-ID, In-Reply-To/References on replies, MIME-Version,
Content-Type/Transfer-Encoding. Line endings are LF (Maildir convention),
every message ends with a newline and contains no CR, so Dovecot stores the
bytes unchanged whichever way they arrive (IMAP APPEND, dsync, LMTP).

Files go to OUT/cur/ named
  <unix time>.M<i>P<seed>.benchgen,S=<size>,W=<CRLF size>:2,<flags>
with flags from {F, R, S} (most older messages seen, the newest mostly not),
and each file's mtime = its Date (Dovecot's INTERNALDATE for maildir).
"""

import argparse
import base64
import binascii
import datetime
import email.charset
import email.header
import email.utils
import hashlib
import math
import os
import random
import sys

# ---------------------------------------------------------------- vocabularies

EN = ("the meeting report budget quarter project release schedule customer invoice "
      "please review attached draft proposal update status server network backup "
      "deadline team lunch thanks regards tomorrow morning afternoon office travel "
      "contract agreement figures summary issue ticket question answer support "
      "account password login change request approval weekend holiday planning "
      "marketing sales numbers forecast estimate design document version final "
      "important urgent reminder call conference agenda minutes notes follow up "
      "shipping order delivery tracking payment receipt discount offer newsletter "
      "and of to in for on with at by from as is are was be it this that we you "
      "they our your their have has had will would can could should may might").split()
DE = ("Grüße Besprechung Größe Übersicht Änderung für über schön Mittwoch Bestätigung "
      "Rechnung Angebot Lösung möglich natürlich Frühstück Straße Vorschläge Zuständigkeit "
      "und der die das mit von zu bei nicht auch noch schon nächste Woche bitte danke "
      "Termin Unterlagen Büro Kollegen Projekt Prüfung Ergebnis müssen können würden").split()
FR = ("réunion élève été déjà très où à propos prévu équipe français garçon façon "
      "reçu numéro problème société développement sécurité côté hôtel fenêtre être "
      "et le la les des un une pour avec dans sur pas plus nous vous merci bonjour "
      "semaine prochaine dossier projet réponse demande première dernière").split()
ES = ("año señor mañana niño información reunión España próxima también después "
      "el la los las de en con por para que una gracias saludos equipo proyecto").split()
RU = ("привет встреча отчёт проект бюджет квартал сервер письмо вопрос ответ "
      "спасибо пожалуйста завтра сегодня неделя команда документ договор счёт "
      "и в на с по для не что это как мы вы они наш ваш был будет можно нужно "
      "сроки задача решение система данные обновление версия релиз").split()
JA = ("会議 報告 予算 四半期 計画 顧客 請求書 確認 添付 資料 提案 更新 状況 "
      "サーバー ネットワーク 締め切り チーム 昼食 ありがとう よろしく 明日 午前 午後 "
      "事務所 出張 契約 数字 要約 問題 質問 回答 サポート 変更 承認 週末 休日 "
      "です ます した こと これ それ お願い します 本日 来週 担当 検討").split()
W1252_EXTRA = ["“quoted”", "‘single’", "—", "–", "€", "…", "•", "™", "Œuvre", "Šárka"]

# charset -> (weight, vocabulary, transfer encodings to pick from)
CHARSETS = [
    ("utf-8", 40, EN * 3 + DE + FR + ES + RU + JA, ["8bit", "quoted-printable", "base64"]),
    ("us-ascii", 12, EN, ["7bit"]),
    ("iso-8859-1", 14, EN + DE + FR + ES, ["quoted-printable", "8bit"]),
    ("windows-1252", 10, EN + DE + FR + W1252_EXTRA, ["quoted-printable"]),
    ("koi8-r", 10, RU + EN[:20], ["8bit", "base64"]),
    ("iso-2022-jp", 8, JA, ["7bit"]),
    ("iso-8859-15", 6, EN + DE + FR + ["€"], ["quoted-printable"]),
]
CHARSET_WEIGHTS = [c[1] for c in CHARSETS]

FIRST = ["Alice", "Bob", "Carol", "David", "Erin", "Frank", "Grace", "Heidi", "Ivan",
         "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent",
         "Victor", "Walter", "Zoë", "Jürgen", "Françoise", "José", "Björn", "Søren",
         "Дмитрий", "Ольга", "Сергей", "太郎", "花子", "健一"]
LAST = ["Smith", "Jones", "Müller", "Dupont", "García", "Ivanov", "Петров", "Иванова",
        "田中", "佐藤", "Nakamura", "O'Brien", "Kowalski", "Øster", "Lefèvre", "Novák"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.test",
           "corp.example", "lists.example.org", "news.example.com"]
ATTACH = [("application/pdf", "pdf"), ("image/jpeg", "jpg"), ("image/png", "png"),
          ("application/zip", "zip"),
          ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
          ("application/octet-stream", "bin")]
EPOCH = datetime.datetime(2023, 1, 2, 8, 0, 0, tzinfo=datetime.timezone.utc)
TZS = [datetime.timezone(datetime.timedelta(hours=h)) for h in (0, 1, 2, -5, -8, 3, 9)]

for _cs in ("iso-2022-jp", "koi8-r", "windows-1252", "iso-8859-15"):
    # Header encoding for charsets the email package does not know well.
    if _cs not in email.charset.CHARSETS or email.charset.CHARSETS[_cs][0] is None:
        email.charset.add_charset(_cs, email.charset.BASE64, None, None)


def log_uniform(rng, lo, hi):
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def words(rng, vocab, n):
    return rng.choices(vocab, k=n)


def text_lines(rng, vocab, target_chars, width):
    """Lines of words, about target_chars characters in total, paragraphs."""
    out = []
    total = 0
    cjk = vocab is JA
    sep = "" if cjk else " "
    while total < target_chars:
        para = words(rng, vocab, rng.randint(20, 90))
        line = ""
        for w in para:
            if line and len(line) + len(w) + 1 > width:
                out.append(line)
                total += len(line) + 1
                line = w
            else:
                line = line + sep + w if line else w
        out.append((line + ("。" if cjk else ".")))
        out.append("")
        total += len(line) + 2
    return out


def encode_text(lines, charset, cte):
    """Encoded body bytes (LF line ends) for the given charset/transfer encoding."""
    if charset == "iso-2022-jp":
        raw = b"".join(l.encode(charset) + b"\n" for l in lines)
    else:
        raw = "\n".join(lines).encode(charset, errors="replace") + b"\n"
    if cte in ("7bit", "8bit"):
        return raw
    if cte == "quoted-printable":
        qp = binascii.b2a_qp(raw, istext=True)
        return qp if qp.endswith(b"\n") else qp + b"\n"
    return base64.encodebytes(raw)


def hdr_text(s, charset, name):
    """A header value, RFC 2047-encoded when it is not plain ASCII."""
    try:
        s.encode("ascii")
        return s
    except UnicodeEncodeError:
        pass
    cs = charset if charset not in ("us-ascii",) else "utf-8"
    try:
        s.encode(cs)
    except UnicodeEncodeError:
        cs = "utf-8"
    return email.header.Header(s, cs, header_name=name).encode(linesep="\n")


def person(rng, charset):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = ("%s.%s" % (first, last)).encode("ascii", "ignore").decode().lower().replace("'", "")
    if len(local) < 3 or local.startswith(".") or local.endswith("."):
        local = "user%d" % rng.randint(1, 9999)
    addr = "%s@%s" % (local, rng.choice(DOMAINS))
    name = "%s %s" % (first, last)
    try:
        name.encode("ascii")
        disp = '"%s"' % name if "'" in name else name
    except UnicodeEncodeError:
        disp = hdr_text(name, charset, "From")
    return "%s <%s>" % (disp, addr)


def fold(name, value):
    return "%s: %s\n" % (name, value)


def subject(rng, vocab, charset):
    s = " ".join(words(rng, vocab, rng.randint(3, 9))) if vocab is not JA else \
        "".join(words(rng, vocab, rng.randint(3, 8)))
    s = s[:1].upper() + s[1:]
    prefix = rng.choices(["", "Re: ", "Fwd: ", "AW: ", "[list] "], [60, 22, 8, 4, 6])[0]
    return prefix + s


def boundary(rng):
    return "=_bench_%032x" % rng.getrandbits(128)


def html_part(rng, vocab, charset, target):
    lines = text_lines(rng, vocab, target, 100)
    paras, cur = [], []
    for l in lines:
        if l:
            cur.append(l)
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    body = ["<!DOCTYPE html>", "<html><head><meta http-equiv=\"Content-Type\" "
            "content=\"text/html; charset=%s\">" % charset,
            "<style>body{font-family:Arial,sans-serif;font-size:14px}"
            " .footer{color:#888}</style></head><body>"]
    for p in paras:
        body.append("<p>%s</p>" % p.replace("&", "&amp;"))
    body.append("<table width=\"100%%\"><tr><td class=\"footer\">"
                "<a href=\"https://%s/unsubscribe?id=%d\">unsubscribe</a></td></tr></table>"
                % (rng.choice(DOMAINS), rng.getrandbits(32)))
    body.append("</body></html>")
    return body


def make_message(seed, i):
    """Return (bytes, date, flags) for message i of the seeded mailbox."""
    rng = random.Random("bench-%d-%d" % (seed, i))
    cs_name, _, vocab, ctes = rng.choices(CHARSETS, CHARSET_WEIGHTS)[0]
    kind = rng.choices(["text", "html", "attach"], [865, 115, 20])[0]
    # Dates rise with i: about 12 minutes apart with jitter.
    date = EPOCH + datetime.timedelta(seconds=i * 720 + rng.randint(0, 700))
    local_date = date.astimezone(rng.choice(TZS))
    frm = person(rng, cs_name)
    to = person(rng, cs_name)
    domain = frm.rsplit("@", 1)[1].rstrip(">")
    msgid = "<%016x.%d.%d@%s>" % (rng.getrandbits(64), seed, i, domain)

    h = []
    h.append(fold("Return-Path", "<%s>" % frm.rsplit("<", 1)[1].rstrip(">")))
    hops = rng.randint(2, 4)
    t = date
    for k in range(hops):
        ip = "192.0.2.%d" % rng.randint(1, 254) if k else "198.51.100.%d" % rng.randint(1, 254)
        by = "mx%d.mail.example.test" % rng.randint(1, 4) if k == 0 else \
             "relay%d.%s" % (rng.randint(1, 9), rng.choice(DOMAINS))
        frm_host = "relay%d.%s" % (rng.randint(1, 9), domain)
        qid = "%010X" % rng.getrandbits(40)
        h.append("Received: from %s (%s [%s])\n\tby %s (Postfix) with ESMTPS id %s\n"
                 "\tfor <user@mail.example.test>; %s\n"
                 % (frm_host, frm_host, ip, by, qid, email.utils.format_datetime(t)))
        t = t - datetime.timedelta(seconds=rng.randint(0, 5))
    h.append(fold("From", frm))
    h.append(fold("To", to))
    if rng.random() < 0.2:
        h.append(fold("Cc", ", ".join(person(rng, cs_name) for _ in range(rng.randint(1, 3)))))
    subj = subject(rng, vocab, cs_name)
    h.append(fold("Subject", hdr_text(subj, cs_name, "Subject")))
    h.append(fold("Date", email.utils.format_datetime(local_date)))
    h.append(fold("Message-ID", msgid))
    if subj.startswith(("Re: ", "AW: ")):
        ref = "<%016x.%d.%d@%s>" % (rng.getrandbits(64), seed, max(0, i - rng.randint(1, 50)),
                                    rng.choice(DOMAINS))
        h.append(fold("In-Reply-To", ref))
        h.append(fold("References", ref))
    if rng.random() < 0.3:
        h.append(fold("X-Mailer", rng.choice(["Thunderbird 115.4.1", "Apple Mail (2.3731)",
                                             "Microsoft Outlook 16.0", "Roundcube Webmail/1.6.5",
                                             "K-9 Mail for Android"])))
    h.append("MIME-Version: 1.0\n")

    width = 34 if vocab is JA else 72
    if kind == "text":
        cte = rng.choice(ctes)
        size = log_uniform(rng, 1500, 19000) if vocab is not JA else log_uniform(rng, 500, 6000)
        body = encode_text(text_lines(rng, vocab, size, width), cs_name, cte)
        h.append('Content-Type: text/plain; charset="%s"\n' % cs_name)
        h.append("Content-Transfer-Encoding: %s\n" % cte)
        out = "".join(h).encode("ascii") + b"\n" + body
    else:
        b1 = boundary(rng)
        size = log_uniform(rng, 1500, 12000) if vocab is not JA else log_uniform(rng, 500, 4000)
        plain_lines = text_lines(rng, vocab, size, width)
        cte = rng.choice(ctes)
        parts = []
        plain = (b'Content-Type: text/plain; charset="%s"\nContent-Transfer-Encoding: %s\n\n'
                 % (cs_name.encode(), cte.encode())) + encode_text(plain_lines, cs_name, cte)
        if kind == "html":
            html_cte = "quoted-printable" if cte != "7bit" else "7bit"
            html = (b'Content-Type: text/html; charset="%s"\nContent-Transfer-Encoding: %s\n\n'
                    % (cs_name.encode(), html_cte.encode())) + \
                encode_text(html_part(rng, vocab, cs_name, int(size * 1.3)), cs_name, html_cte)
            h.append('Content-Type: multipart/alternative;\n\tboundary="%s"\n' % b1)
            parts = [plain, html]
        else:
            ctype, ext = rng.choice(ATTACH)
            raw_size = log_uniform(rng, 75000, 1500000)  # base64 adds a third
            data = rng.randbytes(raw_size)
            fname = "%s_%d.%s" % (rng.choice(["report", "scan", "photo", "archive", "invoice",
                                              "slides", "Übersicht", "отчёт"]), i, ext)
            fname_hdr = fname if fname.isascii() else \
                "*=utf-8''" + "".join(c if c.isascii() and c.isalnum() or c in "._-" else
                                      "".join("%%%02X" % b for b in c.encode()) for c in fname)
            param = ('name="%s"' % fname) if fname.isascii() else \
                'name="%s"' % hdr_text(fname, "utf-8", "name")
            disp = ('filename="%s"' % fname) if fname.isascii() else ("filename" + fname_hdr)
            att = ("Content-Type: %s; %s\nContent-Disposition: attachment; %s\n"
                   "Content-Transfer-Encoding: base64\n\n" % (ctype, param, disp)).encode() + \
                base64.encodebytes(data)
            h.append('Content-Type: multipart/mixed;\n\tboundary="%s"\n' % b1)
            parts = [plain, att]
        body = b"This is a multi-part message in MIME format.\n\n"
        for p in parts:
            body += b"--" + b1.encode() + b"\n" + p + b"\n"
        body += b"--" + b1.encode() + b"--\n"
        out = "".join(h).encode("ascii") + b"\n" + body

    # Flags: older mail mostly read; the newest 3 % of a 10k box mostly unread.
    flags = ""
    if rng.random() < 0.10:
        flags += "R"
    if rng.random() < 0.75:
        flags += "S"
    if rng.random() < 0.03:
        flags += "F"
    flags = "".join(sorted(set(flags)))
    assert b"\r" not in out
    return out, date, flags


def write_maildir(out, seed, first, count):
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    total = 0
    for i in range(first, first + count):
        data, date, flags = make_message(seed, i)
        ts = int(date.timestamp())
        vsize = len(data) + data.count(b"\n")
        name = "%d.M%dP%d.benchgen,S=%d,W=%d:2,%s" % (ts, i, seed, len(data), vsize, flags)
        path = os.path.join(out, "cur", name)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (ts, ts))
        total += len(data)
    return total


def digest(root):
    """sha256 over sorted (relative path, mtime, sha256(content)) of every file."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                c = hashlib.sha256(f.read()).hexdigest()
            rel = os.path.relpath(p, root)
            h.update(("%s\0%d\0%s\n" % (rel, int(os.stat(p).st_mtime), c)).encode())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--first", type=int, default=0, help="index of the first message")
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--out")
    ap.add_argument("--digest", metavar="DIR", help="print the tree digest of DIR and exit")
    a = ap.parse_args()
    if a.digest:
        print(digest(a.digest))
        return 0
    if not a.out:
        ap.error("--out is required")
    total = write_maildir(a.out, a.seed, a.first, a.messages)
    print("%d messages, %d bytes (%.1f MB) in %s" % (a.messages, total, total / 1e6, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
