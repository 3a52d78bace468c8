#!/usr/bin/env python3
"""Checks bench/gen_mailbox.py: same seed -> byte-identical Maildir; every
message parses; the mix and sizes are in range.  Run: python3 bench/test_gen_mailbox.py"""
import email
import email.policy
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "gen_mailbox.py")
N = int(os.environ.get("GEN_TEST_MESSAGES", "400"))


def gen(out, *extra):
    subprocess.run([sys.executable, GEN, "--messages", str(N), "--out", out, *extra],
                   check=True, stdout=subprocess.DEVNULL)


def digest(d):
    return subprocess.run([sys.executable, GEN, "--digest", d], check=True,
                          capture_output=True, text=True).stdout.strip()


class GenMailboxTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.a = os.path.join(cls.tmp.name, "a")
        cls.b = os.path.join(cls.tmp.name, "b")
        cls.c = os.path.join(cls.tmp.name, "c")
        gen(cls.a)
        gen(cls.b)
        gen(cls.c, "--seed", "10")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_same_seed_same_bytes(self):
        self.assertEqual(digest(self.a), digest(self.b))
        # and file by file, so a failure says which one
        self.assertEqual(sorted(os.listdir(self.a + "/cur")), sorted(os.listdir(self.b + "/cur")))

    def test_other_seed_other_bytes(self):
        self.assertNotEqual(digest(self.a), digest(self.c))

    def test_messages_parse_and_mix(self):
        files = sorted(os.listdir(self.a + "/cur"))
        self.assertEqual(len(files), N)
        kinds, charsets, encoded_subjects, seen = set(), set(), 0, 0
        for fn in files:
            with open(os.path.join(self.a, "cur", fn), "rb") as f:
                raw = f.read()
            self.assertNotIn(b"\r", raw)
            self.assertTrue(raw.endswith(b"\n"))
            size = int(fn.split(",S=")[1].split(",")[0])
            self.assertEqual(size, len(raw))
            m = email.message_from_bytes(raw, policy=email.policy.default)
            for h in ("From", "To", "Subject", "Date", "Message-ID", "Received", "MIME-Version"):
                self.assertIsNotNone(m[h], (fn, h))
            str(m["Subject"])
            encoded_subjects += b"=?" in raw.split(b"\nSubject: ", 1)[1].split(b"\n", 1)[0]
            kinds.add(m.get_content_type())
            for p in m.walk():
                if p.get_content_maintype() == "text":
                    charsets.add(p.get_content_charset())
                    p.get_content()  # decodes in its charset
            seen += "S" in fn.rsplit(":2,", 1)[1]
        self.assertEqual(kinds, {"text/plain", "multipart/alternative", "multipart/mixed"})
        self.assertTrue({"utf-8", "iso-8859-1", "windows-1252", "koi8-r", "iso-2022-jp"} <= charsets)
        self.assertGreater(encoded_subjects, N // 4)
        self.assertTrue(0.5 * N < seen < 0.95 * N)


if __name__ == "__main__":
    unittest.main()
