"""Seeded fuzz test (issue 13): every line a client sends gets a defined answer.

At least 20,000 random and mutated command lines, covering every command
the server registers (``nntpd.commands.load_all()``), plus POST and IHAVE
bodies, go to a real ``nntpd serve`` over several connections, pipelined
in bursts. Every answer is read and checked:

- the status line matches ``^[1-5][0-9][0-9]( |$)``, is valid UTF-8, holds
  no control character but its CRLF and is at most 512 octets (RFC 3977
  3.1 and 3.2);
- a multi-line answer (the codes RFC 3977 gives each command a block with)
  is read to its terminating dot; each of its lines ends in CRLF and holds
  no NUL and no CR or LF but that pair (RFC 3977 3.1.1 and 3.6);
- no 403, ever; no close the client did not ask for (only QUIT's 205 and
  the documented 400 of the limits and the idle timeout close); every
  answer within 5 s (else a hang).

Failures are collected, not stopped at: the test ends with one line per
distinct failing shape (what failed, the command, the kind of input) with
a line that reproduces it and what the server answered. A hang that
stops the whole server is attributed by replaying each suspect burst
alone on a restarted server; a shape that hung once is not sent again, so
a broken server costs seconds per shape, not per line.

The server runs as its own process (``nntpd serve`` with a config file:
IHAVE open to loopback, no login delay, a trusted-only group) so that a
loop stuck in a command is seen as a hang, and killed, instead of
freezing the test. The database is a real SQLite file, seeded through
the store with a few groups and articles with long subjects.

The seed is printed first and is part of every failure message; set
``NNTPD_FUZZ_SEED`` to replay a run, ``NNTPD_FUZZ_LINES`` for more lines.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from conftest import free_port
from nntpd.article import prepare_article
from nntpd.commands import load_all
from nntpd.config import load_settings
from nntpd.passwords import hash_password
from storage import Poster, Store

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("NNTPD_FUZZ_SEED", "397713"))
LINES = int(os.environ.get("NNTPD_FUZZ_LINES", "20000"))
CONNECTIONS = ("anon", "anon", "anon", "member", "staff", "anon")  # one persona per connection
RESPONSE_TIMEOUT = 5.0  # an answer (status and block) slower than this is a hang
PROBE_TIMEOUT = 2.0  # a fresh connection's greeting and DATE: is the whole server stuck?
GIVE_UP_AFTER = 300.0  # seconds: a server that hangs everywhere ends the run early (a failure)
PATH_HOST = "fuzz.example"
PASSWORD = "fuzz-password-1"
MAX_ARTICLE = 64 * 1024  # oversized articles are cheap to send

STATUS_LINE = re.compile(rb"^[1-5][0-9][0-9]( |\r\n$)")
CONTROL = re.compile(rb"[\x00-\x1f\x7f]")  # C0 controls (TAB included) and DEL
MULTI_LINE = {  # RFC 3977: the codes followed by a block, per command
    "ARTICLE": {220}, "HEAD": {221}, "BODY": {222}, "CAPABILITIES": {101}, "HELP": {100},
    "LIST": {215}, "LISTGROUP": {211}, "NEWGROUPS": {231}, "NEWNEWS": {230}, "OVER": {224},
    "XOVER": {224}, "HDR": {225}, "XHDR": {221}, "XPAT": {221},
}
ANY_MULTI = set().union(*MULTI_LINE.values())
SINGLE_OK = {"GROUP": {211}}  # a code that is multi-line elsewhere, single-line here
CLOSING_400 = re.compile(r"idle|timeout|temporarily unavailable|limit|too many", re.I)


# -- the database and the server ---------------------------------------------------------

LONG_GROUP = "fuzz." + "a" * 80
GROUPS = ["fuzz.alpha", "fuzz.beta", "fuzz.private.staff", LONG_GROUP, "local.test"]
CONFIG = f"""
[server]
path_host = "{PATH_HOST}"
feed_access = "loopback"
max_article_bytes = {MAX_ARTICLE}

[auth]
failure_delay = 0.0
max_failure_delay = 0.0
lockout_failures = 1000000

[logging]
level = "WARNING"

[[access]]
groups = "*"
read = "anyone"
post = "loopback"

[[access]]
groups = "fuzz.private.*"
read = "trusted"
post = "trusted"
"""


def seed_article(i: int, groups: str, subject: str, refs: str = "") -> bytes:
    extra = f"References: {refs}\r\n" if refs else ""
    return (f"From: Seed {i} <seed{i}@example.com>\r\nNewsgroups: {groups}\r\n"
            f"Subject: {subject}\r\nMessage-ID: <seed.{i}@{PATH_HOST}>\r\n{extra}"
            f"X-Fuzz-Note: note {i} {'a' * (i % 7 * 10)}\r\n\r\n"
            f"Body {i}\r\n.dot line\r\n\r\nlast line {i}\r\n").encode()


async def seed(db: Path) -> list[str]:
    """Groups (one trusted-only), accounts (member, staff, a victim for wrong passwords) and
    about 40 articles with long subjects; returns their Message-IDs."""
    store = Store(f"sqlite+aiosqlite:///{db}", path_host=PATH_HOST)
    try:
        await store.init_schema()
        for name in GROUPS:
            if await store.group(name) is None:
                await store.create_group(name, description=f"fuzz {name[:20]}", creator="fuzz")
        cheap = hash_password(PASSWORD, n=2**4)  # logins stay cheap; the server reads the cost
        for name in ("fuzzmember", "fuzzstaff", "fuzzvictim"):
            await store.add_account(name, email=f"{name}@example.com", password_hash=cheap)
        await store.set_role("fuzzstaff", "staff", changed_by="fuzz")
        subjects = ["a" * 28, "a" * 300, "Ünïcödé sübject ☃", "Re: " + "a" * 60 + " b", "x" * 900,
                    "tabs\tin subject", "short"]
        ids = []
        for i in range(40):
            groups = ["fuzz.alpha", "fuzz.alpha,fuzz.beta", LONG_GROUP, "fuzz.private.staff",
                      "local.test"][i % 5]
            refs = f"<seed.{i - 5}@{PATH_HOST}>" if i >= 5 and i % 3 == 0 else ""
            raw = seed_article(i, groups, subjects[i % len(subjects)], refs)
            article = prepare_article(raw, path_host=PATH_HOST, now=datetime.now(timezone.utc))
            await store.post(article, Poster(author_key=f"seed{i}@example.com"))
            ids.append(f"<seed.{i}@{PATH_HOST}>")
        return ids
    finally:
        await store.close()


class ServerProcess:
    """`nntpd serve` on the fuzz database; killed (SIGKILL, by pid) when stuck or done."""

    def __init__(self, folder: Path, db: Path, config: Path) -> None:
        self.folder, self.db, self.config = folder, db, config
        self.port = free_port()
        self.log = folder / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("NNTPD_CONFIG", None)
        command = [sys.executable, "-c", "from cli import main; main()", "--config", str(self.config),
                   "--database", f"sqlite+aiosqlite:///{self.db}", "serve", "--port", str(self.port)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(command, cwd=self.folder, env=env, stdout=out, stderr=out)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            await asyncio.wait_for(reader.readline(), 10)
            writer.close()
            return
        raise RuntimeError(f"serve did not start:\n{self.log_tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    async def restart(self) -> None:
        self.kill()
        await self.start()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def exceptions(self) -> Counter[str]:
        """The exceptions the server logged (last line of each traceback), by text."""
        found: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Fault)\b.*", line):
                found[line[:160]] += 1
        return found


# -- what the fuzzer sends -------------------------------------------------------------------

SPECIAL = [b"\x00", b"\r", b"\n", b"\t", b"\x7f", b"\x1b", b"\x0b", b"\xff", b"\xfe", b"\x80",
           b"\xc3", b"\xe9", b"\xed\xa0\x80", b"\xf0\x9f\x92\xa9", b"\xc0\xaf", b" ", b",", b"*",
           b"[", b"]", b"\\", b"<", b">", b"-", b"!", b"?", b"%s", b"%n", b"'", b'"', b"\xe2\x80\xae"]

HOSTILE_WILDMATS = [
    b"*a*a*a*a*a*a*a*a*a*a*a*a*b", b"*a" * 40 + b"*b", b"*a" * 248, b"*?*?*?*?*?*?*?*?*?*?*?*?b",
    b"*[a]*[a]*[a]*[a]*[a]*[a]*[a]*[a]*[a]*[a]*b", b"*[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*b",
    b"*\\a*\\a*\\a*\\a*\\a*\\a*\\a*\\a*\\a*\\a*b", b",".join([b"*a*a*a*a*a*a*b"] * 30),
    b"!*a*a*a*a*a*a*a*a*a*a*b,*",
]
BAD_WILDMATS = [
    b"[", b"a[b", b"]", b"[]", b"[^]", b"[]a]", b"[!a]", b"\\", b"a\\", b"\\\\", b"[z-a]", b"[a-",
    b"[\\]", b"[[:alpha:]]", b"[a-\\]", b"[^", b"[]", b"(", b")", b"a{1000}", b"a|b", b"$", b"^",
    b".*", b"\x00", b"*\xff*", b"\xe9*", b"!", b"!!", b",", b",,,", b"a," * 200, b"?" * 497,
    b"[" * 300, b"*" * 497, b"\\" * 497, b"*,!" * 150, b"[\x00-\xff]", b"[\xff-\x00]",
]
GOOD_WILDMATS = [b"*", b"fuzz.*", b"!fuzz.*", b"*,!fuzz.*", b"local.test", b"fuzz.?eta",
                 b"fuzz.[ab]*", b"*aaa*", b"fuzz.private.*", b"unanswered.*", b"*.*.*"]
BAD_GROUPS = [
    b"nonexistent.group", b"rel.\xe9t\xe9", b"\xff", b"fuzz.\x00alpha", b"fuzz.alpha\r",
    b"unanswered.fuzz.alpha", b"awaiting-staff.fuzz.alpha", b"unanswered.", b".", b"..", b"*",
    b"fuzz.*", b"r\xc3\xa9l.\xc3\xa9t\xc3\xa9", b"a" * 497, b"fuzz..alpha", b"-", b"\x7f", b"%s",
    b"'; DROP TABLE groups; --", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"FUZZ.ALPHA",
    b"unanswered.fuzz.private.staff", b"awaiting-staff.\xff", b"fuzz.alpha\x1b[2J",
]
BAD_MSGIDS = [
    b"<nonexistent@x>", b"<\xff\xfe@example>", b"<\xe9@x>", b"<>", b"<@>", b"<a@b", b"a@b>",
    b"<<a@b>>", b"<a\x00b@x>", b"<" + b"a" * 300 + b"@x>", b"<" + b"a" * 490 + b"@x>", b"<a@b>>",
    b"<a>b@c>", b"<%s@x>", b"<a@b>\r", b"<\xc3\xa9@x>", b"<a@[127.0.0.1]>", b"<\xed\xa0\x80@x>",
    b"<a@b\x7f>", b"<seed.1@fuzz.example\xff>", b"<'or'1'='1@x>", b"<a\rb@x>",
]
RANGES = [
    b"1", b"1-", b"1-5", b"5-3", b"-", b"-5", b"0", b"0-", b"0-0", b"2147483647", b"2147483648",
    b"1-2147483648", b"99999999999999999999", b"1--2", b"+1", b"1-2-3", "١".encode(), "²".encode(),
    b"0x10", b"1.5", b"1e3", b"-0", b"1-\x00", b"\xff", b"3-", b"100000-", b"1-1", b"00000000000000001",
    b"9" * 400, b"2147483647-", b"1-99999999999999999999", b"\xef\xbc\x91", b"1 -2",
]
FIELDS = [b"Subject", b"subject", b"SUBJECT", b"From", b"Date", b"Message-ID", b"References",
          b":bytes", b":lines", b"Xref", b"X-Poster-Role", b"Newsgroups", b"Path", b"Lines",
          b"Bytes", b"X-Fuzz-Note", b"X-Nonexistent", b":", b":unknown", b"Subject:"]
BAD_FIELDS = [b"\xff", b"Subj\x00ect", b"a" * 497, b"\xe9t\xe9", b":\xff", b"Sub ject", b"*",
              b"Subject\r", b"::", b"X-" + b"\xc3" * 100]
DATES = [(b"19700101", b"000000"), (b"700101", b"000000"), (b"20240101", b"120000"),
         (b"991231", b"235959"), (b"20991231", b"235959"), (b"20240229", b"000060")]
BAD_DATES = [(b"20241301", b"000000"), (b"00000000", b"000000"), (b"2024010", b"000000"),
             (b"20240101", b"246060"), (b"20240230", b"000000"), (b"\xff", b"000000"),
             (b"20240101", b"12:00:00"), (b"99999999", b"999999"), (b"-1", b"-1"),
             ("２０２４０１０１".encode(), b"000000"), (b"20240101", b"0000000")]
GMTS = [b"GMT", b"gmt", b"UTC", b"X", b"GMT\x00", b"\xff"]
LIST_KEYWORDS = [b"ACTIVE", b"active", b"ACTIVE.TIMES", b"DISTRIB.PATS", b"HEADERS", b"NEWSGROUPS",
                 b"OVERVIEW.FMT", b"SUBSCRIPTIONS", b"MOTD", b"EXTENSIONS", b"COUNTS", b"\xff",
                 b"ACTIVE\x00", b"ActIve.TimeS"]
CONTROL_BYTES = [0, 1, 7, 8, 9, 11, 12, 13, 27, 127]
USERS = [b"fuzzvictim", b"nobody", b"\xff", b"a b c", b"a" * 497, b"\x00", b"fuzzvictim\r",
         b"FUZZVICTIM", b"\xc3\xa9", b"%s%s%s"]


T = TypeVar("T")


def pick(rng: random.Random, values: Sequence[T]) -> T:
    return values[rng.randrange(len(values))]


@dataclass
class Line:
    """One generated command line: bytes without its terminator, what it is meant as, the kind."""

    data: bytes
    label: str  # the command it was built from, e.g. "XPAT" or "LIST ACTIVE"
    kind: str  # how it was built, e.g. "valid", "bad-arg:msgid", "mutated:insert"
    term: bytes = b"\r\n"


class Generator:
    """Random and mutated command lines and POST/IHAVE bodies, all from one seeded Random."""

    def __init__(self, rng: random.Random, verbs: list[str], ids: list[str]) -> None:
        self.rng = rng
        self.verbs = verbs
        self.ids = [i.encode() for i in ids]
        self.counter = 0
        self.makers: dict[str, Callable[[], tuple[str, list[bytes], list[str]]]] = {
            v: getattr(self, f"args_{v.lower()}", self.args_generic) for v in verbs}

    # argument pools by category
    def valid(self, cat: str) -> bytes:
        r = self.rng
        if cat == "group":
            return pick(r, [g.encode() for g in GROUPS] + [b"unanswered.fuzz.alpha"])
        if cat == "msgid":
            return pick(r, self.ids)
        if cat == "range":
            return pick(r, [b"1", b"1-", b"1-10", b"3-7", b"20-", b"5", b"1-100000"])
        if cat == "number":
            return str(r.randint(0, 45)).encode()
        if cat == "article":
            return self.valid(pick(r, ["msgid", "number"]))
        if cat == "field":
            return pick(r, FIELDS)
        if cat == "wildmat":
            return pick(r, GOOD_WILDMATS)
        return b"x"

    def hostile(self, cat: str) -> bytes:
        r = self.rng
        pools: dict[str, list[bytes]] = {
            "group": BAD_GROUPS, "msgid": BAD_MSGIDS, "range": RANGES, "number": RANGES,
            "article": BAD_MSGIDS + RANGES, "field": BAD_FIELDS, "wildmat": BAD_WILDMATS + HOSTILE_WILDMATS,
            "keyword": LIST_KEYWORDS, "user": USERS,
        }
        pool = pools.get(cat) or (BAD_GROUPS + BAD_MSGIDS + RANGES)
        return pick(r, pool)

    # the arguments of each command: (label, args, category of each arg)
    def args_article(self) -> tuple[str, list[bytes], list[str]]:
        return ("", [self.valid("article")], ["article"]) if self.rng.random() < 0.8 else ("", [], [])

    args_head = args_body = args_stat = args_article

    def args_group(self) -> tuple[str, list[bytes], list[str]]:
        return "", [self.valid("group")], ["group"]

    def args_listgroup(self) -> tuple[str, list[bytes], list[str]]:
        n = self.rng.choice([0, 1, 2, 2])
        return "", [self.valid("group"), self.valid("range")][:n], ["group", "range"][:n]

    def args_over(self) -> tuple[str, list[bytes], list[str]]:
        if self.rng.random() < 0.2:
            return "", [], []
        cat = pick(self.rng, ["range", "range", "msgid"])
        return "", [self.valid(cat)], [cat]

    def args_xover(self) -> tuple[str, list[bytes], list[str]]:
        return ("", [self.valid("range")], ["range"]) if self.rng.random() < 0.8 else ("", [], [])

    def args_hdr(self) -> tuple[str, list[bytes], list[str]]:
        cat = pick(self.rng, ["range", "range", "msgid"])
        if self.rng.random() < 0.2:
            return "", [self.valid("field")], ["field"]
        return "", [self.valid("field"), self.valid(cat)], ["field", cat]

    args_xhdr = args_hdr

    def args_xpat(self) -> tuple[str, list[bytes], list[str]]:
        cat = pick(self.rng, ["range", "range", "msgid"])
        pats = [pick(self.rng, GOOD_WILDMATS + [b"*a*", b"*\xc3\xbc*", b"*aaaa*"])
                for _ in range(self.rng.choice([1, 1, 1, 2, 3]))]
        return "", [self.valid("field"), self.valid(cat)] + pats, ["field", cat] + ["wildmat"] * len(pats)

    def args_list(self) -> tuple[str, list[bytes], list[str]]:
        kw = pick(self.rng, LIST_KEYWORDS[:7] + [b""])
        if not kw:
            return "LIST", [], []
        label = f"LIST {kw.decode().upper()}"
        if kw.upper() in (b"ACTIVE", b"ACTIVE.TIMES", b"NEWSGROUPS") and self.rng.random() < 0.7:
            return label, [kw, self.valid("wildmat")], ["keyword", "wildmat"]
        if kw.upper() == b"HEADERS" and self.rng.random() < 0.5:
            return label, [kw, pick(self.rng, [b"MSGID", b"RANGE", b"range", b"OTHER"])], ["keyword", "keyword"]
        return label, [kw], ["keyword"]

    def date_args(self) -> tuple[list[bytes], list[str]]:
        date, tm = pick(self.rng, DATES if self.rng.random() < 0.8 else BAD_DATES)
        args, cats = [date, tm], ["date", "time"]
        if self.rng.random() < 0.7:
            args.append(b"GMT" if self.rng.random() < 0.8 else pick(self.rng, GMTS))
            cats.append("gmt")
        return args, cats

    def args_newgroups(self) -> tuple[str, list[bytes], list[str]]:
        args, cats = self.date_args()
        return "", args, cats

    def args_newnews(self) -> tuple[str, list[bytes], list[str]]:
        args, cats = self.date_args()
        return "", [self.valid("wildmat")] + args, ["wildmat"] + cats

    def args_authinfo(self) -> tuple[str, list[bytes], list[str]]:
        r = self.rng.random()
        if r < 0.45:
            return "AUTHINFO USER", [b"USER", pick(self.rng, USERS)], ["keyword", "user"]
        if r < 0.55:  # a wrong password costs the server a full scrypt: keep these rare
            return "AUTHINFO PASS", [b"PASS", b"wrong-" + str(self.rng.random()).encode()], ["keyword", "pass"]
        if r < 0.75:
            blob = pick(self.rng, [b"=", b"*", b"!!!notbase64", base64.b64encode(b"no-nuls"),
                                   base64.b64encode(b"a\x00b"), base64.b64encode(b"\xff\x00\xfe\x00\xfd"),
                                   base64.b64encode(b"x\x00fuzzvictim\x00wrong")])
            return "AUTHINFO SASL", [b"SASL", b"PLAIN", blob], ["keyword", "keyword", "b64"]
        if r < 0.85:
            return "AUTHINFO SASL", [b"SASL", b"PLAIN"], ["keyword", "keyword"]
        return "AUTHINFO", [pick(self.rng, [b"GENERIC", b"SASL", b"SIMPLE", b"\xff", b"user"])], ["keyword"]

    def args_mode(self) -> tuple[str, list[bytes], list[str]]:
        return "", [pick(self.rng, [b"READER", b"reader", b"READER", b"STREAM", b"\xff"])], ["keyword"]

    def args_capabilities(self) -> tuple[str, list[bytes], list[str]]:
        if self.rng.random() < 0.6:
            return "", [], []
        return "", [pick(self.rng, [b"AUTHINFO", b"9PROBE!", b"\xff", b"READER"])], ["keyword"]

    def args_ihave(self) -> tuple[str, list[bytes], list[str]]:
        if self.rng.random() < 0.75:
            self.counter += 1
            return "", [f"<fuzz.ihave.{SEED}.{self.counter}@{PATH_HOST}>".encode()], ["msgid"]
        return "", [self.valid("msgid")], ["msgid"]

    def args_generic(self) -> tuple[str, list[bytes], list[str]]:
        """No arguments (DATE, HELP, LAST, NEXT, POST, QUIT, STARTTLS) or a command added later."""
        return "", [], []

    # whole lines
    def line(self) -> Line:
        """One command line of a random kind (see the module doc)."""
        r = self.rng.random()
        if r < 0.06:
            return self.random_bytes()
        verb = pick(self.rng, self.verbs)
        if verb == "AUTHINFO" and self.rng.random() < 0.5:
            verb = pick(self.rng, self.verbs)  # logins are slow: half as often as the others
        label, args, cats = self.makers[verb]()
        label = label or verb
        line = Line(b"", label, "valid")
        if r < 0.30:
            line.kind = "valid"
        elif r < 0.55:
            args, line.kind = self.bad_arg(args, cats, label)
        elif r < 0.62:
            args = args + [self.valid(pick(self.rng, ["group", "range", "msgid", "field"]))
                           for _ in range(self.rng.choice([1, 2, 5, 60]))]
            line.kind = "extra-args"
        elif r < 0.67:
            args, line.kind = self.long_arg(args)
        line.data = self.join(verb.encode(), args)
        if 0.67 <= r < 0.92:
            line.data, line.kind = self.mutate(line.data)
        elif r >= 0.92:
            line.data, line.term, line.kind = self.reshape(verb.encode(), args)
        return line

    def join(self, verb: bytes, args: list[bytes]) -> bytes:
        return b" ".join([verb] + args)

    def bad_arg(self, args: list[bytes], cats: list[str], label: str) -> tuple[list[bytes], str]:
        """One argument swapped for a hostile value of its kind (or one added)."""
        args = list(args)
        wild = [i for i, c in enumerate(cats) if c == "wildmat"]
        if wild and self.rng.random() < 0.3:
            i = pick(self.rng, wild)
            args[i] = pick(self.rng, HOSTILE_WILDMATS)
            return args, "hostile-wildmat"
        if label.startswith("LIST ") and label.split()[1] in ("ACTIVE", "ACTIVE.TIMES", "NEWSGROUPS"):
            value = pick(self.rng, BAD_WILDMATS + HOSTILE_WILDMATS)
            args = args[:1] + [value]
            return args, "hostile-wildmat" if value in HOSTILE_WILDMATS else "bad-arg:wildmat"
        if not args:
            cat = pick(self.rng, ["group", "msgid", "range", "wildmat"])
            return [self.hostile(cat)], f"bad-arg:{cat}"
        i = self.rng.randrange(len(args))
        cat = cats[i] if i < len(cats) else "other"
        args[i] = self.hostile(cat)
        return args, f"bad-arg:{cat}"

    def long_arg(self, args: list[bytes]) -> tuple[list[bytes], str]:
        """An argument of 490-2,000 octets, or rarely one of 70,000 (past the read limit)."""
        size = pick(self.rng, [490, 497, 498, 505, 512, 600, 2000] * 6 + [70000])
        filler = pick(self.rng, [b"a", b"\xff", b"<", b"*a", b"9", b"\xc3\xa9"])
        arg = (filler * size)[:size]
        if args:
            args = list(args)
            args[self.rng.randrange(len(args))] = arg
        else:
            args = [arg]
        return args, f"long-arg:{'huge' if size > 60000 else size}"

    def mutate(self, data: bytes) -> tuple[bytes, str]:
        """1-3 byte-level edits: insert, replace, delete, duplicate, truncate, case, append."""
        names = []
        for _ in range(self.rng.choice([1, 1, 2, 3])):
            how = pick(self.rng, ["insert", "insert", "replace", "delete", "duplicate", "truncate",
                                  "case", "append"])
            names.append(how)
            pos = self.rng.randrange(len(data) + 1)
            special = pick(self.rng, SPECIAL)
            if how == "insert":
                data = data[:pos] + special + data[pos:]
            elif how == "replace":
                data = data[:pos] + special + data[pos + 1:]
            elif how == "delete":
                data = data[:pos] + data[pos + self.rng.randint(1, 5):]
            elif how == "duplicate":
                data = data[:pos] + data[pos:pos + 20] * self.rng.randint(2, 30) + data[pos:]
            elif how == "truncate":
                data = data[:max(1, pos)]
            elif how == "case":
                data = data.swapcase() if self.rng.random() < 0.5 else data.lower()
            else:
                data = data + bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 30)))
        return data, "mutated:" + "+".join(sorted(set(names)))

    def reshape(self, verb: bytes, args: list[bytes]) -> tuple[bytes, bytes, str]:
        """The same words with other separators, case or line end."""
        how = pick(self.rng, ["tabs", "spaces", "leading", "trailing", "lowercase", "bare-lf", "cr-cr-lf"])
        term = b"\r\n"
        if how == "tabs":
            data = b"\t".join([verb] + args)
        elif how == "spaces":
            data = b"   ".join([verb] + args)
        elif how == "leading":
            data = b" \t " + self.join(verb, args)
        elif how == "trailing":
            data = self.join(verb, args) + b" \t  "
        elif how == "lowercase":
            data = self.join(verb.lower(), args)
        elif how == "bare-lf":
            data, term = self.join(verb, args), b"\n"
        else:
            data, term = self.join(verb, args), b"\r\r\n"
        return data, term, f"reshaped:{how}"

    def random_bytes(self) -> Line:
        """Noise: printable, control and 8-bit bytes, sometimes after a real verb."""
        n = self.rng.choice([1, 3, 10, 40, 120, 400, 600])
        alphabet = pick(self.rng, ["mixed", "high", "control", "ascii"])
        out = bytearray()
        for _ in range(n):
            if alphabet == "high":
                out.append(self.rng.randrange(0x80, 0x100))
            elif alphabet == "control":
                out.append(self.rng.choice(CONTROL_BYTES) if self.rng.random() > 0.005 else 10)
            elif alphabet == "ascii":
                out.append(self.rng.randrange(0x20, 0x7f))
            else:
                out.append(self.rng.randrange(256) if self.rng.random() < 0.97 else 10)
        if self.rng.random() < 0.4:
            verb = pick(self.rng, self.verbs)
            return Line(verb.encode() + b" " + bytes(out), verb, f"random-bytes:{alphabet}")
        return Line(bytes(out), "(noise)", f"random-bytes:{alphabet}")

    # bodies
    def body(self, ihave_id: bytes | None, avoid: set[str]) -> tuple[bytes, str]:
        """An article to send after 340/335 (dot-stuffed, with its terminator) and its kind;
        not of a kind in ``avoid`` (kinds that hung)."""
        kind = pick(self.rng, [k for k in ARTICLE_KINDS if f"body:{k}" not in avoid] or ["valid"])
        head, body = self.article_parts(kind, ihave_id)
        data = head + b"\r\n" + body if head is not None else body
        return stuff(data, kind == "bare-lf"), f"body:{kind}"

    def article_parts(self, kind: str, ihave_id: bytes | None) -> tuple[bytes | None, bytes]:
        """(header block with CRLFs, or None for no header/body split; body) for ``kind``."""
        r = self.rng
        self.counter += 1
        mid = ihave_id or f"<fuzz.post.{SEED}.{self.counter}@{PATH_HOST}>".encode()
        group = pick(r, [b"fuzz.alpha", b"fuzz.beta", b"fuzz.alpha,fuzz.beta", LONG_GROUP.encode(),
                         b"local.test"])
        fields = {b"From": b"Fuzz <fuzz@example.com>", b"Newsgroups": group,
                  b"Subject": b"fuzz " + b"a" * r.randint(1, 200), b"Message-ID": mid}
        if ihave_id is not None:
            fields[b"Path"] = b"peer.example!not-for-mail"
            fields[b"Date"] = b"Mon, 01 Jan 2024 00:00:00 GMT"
        body = b"Hello\r\n.leading dot\r\n..two dots\r\n.\r\n\r\nend\r\n"
        if kind == "no-newsgroups":
            del fields[b"Newsgroups"]
        elif kind == "no-from":
            del fields[b"From"]
        elif kind == "no-subject":
            del fields[b"Subject"]
        elif kind == "private-group":
            fields[b"Newsgroups"] = b"fuzz.private.staff"
        elif kind == "bad-newsgroups":
            fields[b"Newsgroups"] = pick(r, BAD_GROUPS)
        elif kind == "bad-msgid":
            fields[b"Message-ID"] = pick(r, BAD_MSGIDS)
        elif kind == "dup-msgid":
            fields[b"Message-ID"] = pick(r, self.ids)
        elif kind == "8bit-header":
            fields[b"Subject"] = b"\xff\xfe\xe9t\xe9 \xc3\xa9"
            fields[b"From"] = b"\xe9ric <\xe9@example.com>"
        elif kind == "nul-header":
            fields[b"Subject"] = b"nul\x00here"
        elif kind == "nul-body":
            body = b"before\x00after\r\n"
        elif kind == "lone-cr":
            body = b"one\rtwo\r\nthree\r\n"
        elif kind == "lone-lf":
            body = b"one\ntwo\r\n.three\nfour\r\n"
        elif kind == "cr-in-header":
            fields[b"Subject"] = b"split\rhere"
        elif kind == "long-header-line":
            fields[b"Subject"] = b"a" * r.choice([998, 5000, 20000])
        elif kind == "many-headers":
            for i in range(r.choice([100, 600])):
                fields[b"X-H%d" % i] = b"v"
        elif kind == "huge":
            body = (b"x" * 998 + b"\r\n") * (MAX_ARTICLE // 1000 + 5)
        elif kind == "control-cancel":
            fields[b"Control"] = b"cancel " + pick(r, [b"<nonexistent@x>", b"<\xff@x>", b"junk"])
        elif kind == "control-other":
            fields[b"Control"] = pick(r, [b"newgroup fuzz.new", b"rmgroup fuzz.alpha", b"\xff"])
        elif kind == "date-bad":
            fields[b"Date"] = pick(r, [b"yesterday", b"Mon, 01 Jan 9999 00:00:00 GMT", b"\xff", b""])
        elif kind == "references-bad":
            fields[b"References"] = pick(r, [b"<a@b> <\xff@c>", b"<" * 300, b"<a@b>" * 80])
        elif kind == "from-several":
            fields[b"From"] = b"a@example.com, b@example.com"
        elif kind == "folded":
            fields[b"Subject"] = b"folded\r\n\tcontinued\r\n  again"
        elif kind == "header-no-colon":
            fields[b"NoColonHere"] = None
        elif kind == "empty":
            return None, b""
        elif kind == "headers-only":
            return None, b"".join(k + b": " + v + b"\r\n" for k, v in fields.items())
        elif kind == "binary":
            return None, bytes(r.randrange(256) for _ in range(r.randint(1, 3000)))
        elif kind == "dot-lines":
            body = b".\r\n..\r\n. \r\n.\r\r\n...\r\n.x\r\n"
        elif kind == "bare-lf":
            head = b"".join(k + b": " + v + b"\n" for k, v in fields.items())
            return None, head + b"\nbare LF body\n.dot\nend\n"
        head = b"".join((k + b": " + v if v is not None else k) + b"\r\n" for k, v in fields.items())
        return head, body


ARTICLE_KINDS = [
    "valid", "valid", "valid", "no-newsgroups", "no-from", "no-subject", "private-group",
    "bad-newsgroups", "bad-msgid", "dup-msgid", "8bit-header", "nul-header", "nul-body", "lone-cr",
    "lone-lf", "cr-in-header", "long-header-line", "many-headers", "huge", "control-cancel",
    "control-other", "date-bad", "references-bad", "from-several", "folded", "header-no-colon",
    "empty", "headers-only", "binary", "dot-lines", "bare-lf",
]


def stuff(article: bytes, bare_lf: bool) -> bytes:
    """Dot-stuff every line (split at LF, as servers find line starts) and add the final dot.

    Lines that start with '.' get another, so no '.' line can end the block early;
    ``bare_lf`` ends the block with '.\\n' (issue 13, point 4: that must not hang either).
    """
    if article and not article.endswith(b"\n"):
        article += b"\n" if bare_lf else b"\r\n"
    lines = article.split(b"\n")[:-1] if article else []
    stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\n" for ln in lines)
    return stuffed + (b".\n" if bare_lf else b".\r\n")


# -- reading and checking the answers -------------------------------------------------------


PRINTABLE = re.compile(rb"[\x21-\x7e]")
SPLITTERS = (re.compile(rb"[ \t]+"), re.compile(rb"\s+"))


def segments(line: Line) -> list[Seg]:
    """The lines the server will see (it reads up to each LF), each with the verbs it may take.

    A piece with no visible ASCII character gets an ``X`` in front: whether a server
    ignores such a line (RFC 3977 does not say) is not what this test is about, and it
    must know how many answers to wait for.
    """
    pieces = line.data.split(b"\n")
    out = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        if not PRINTABLE.search(piece):
            piece = b"X" + piece
        data = piece + (line.term if last else b"\n")
        out.append(Seg(data, line.label, line.kind, verbs_of(piece)))
    return out


def verbs_of(piece: bytes) -> frozenset[str]:
    """What a server may take as the command verb: the first word, upper-cased, read either way
    (split at SP/TAB or any whitespace; str.upper or ASCII only)."""
    found = set()
    body = piece.rstrip(b"\r\n")
    for splitter in SPLITTERS:
        words = [w for w in splitter.split(body) if w]
        if words:
            text = words[0].decode("utf-8", "surrogateescape")
            found.add(text.upper())
            found.add(words[0].upper().decode("utf-8", "surrogateescape"))
    return frozenset(found)


@dataclass
class Seg:
    data: bytes  # as sent, with its line end
    label: str
    kind: str
    verbs: frozenset[str]

    @property
    def transfers(self) -> bool:
        """POST or IHAVE: the server may answer 340/335 and then read an article."""
        return bool(self.verbs & {"POST", "IHAVE"})


@dataclass
class Failure:
    what: str  # 403, closed, malformed, hang, desync
    label: str
    kind: str
    repro: str
    observed: str
    problem: str = ""  # for malformed answers: what is wrong, without the details

    @property
    def key(self) -> tuple[str, ...]:
        """Its shape: a malformed answer by command and problem (an article with a NUL breaks
        every OVER that lists it, whatever the range), anything else by command and input."""
        if self.problem:
            return self.what, self.label.split()[0], self.problem
        return (self.what, *shape(self.label, self.kind))


@dataclass
class Stats:
    lines: int = 0
    bodies: Counter[str] = field(default_factory=Counter)
    codes: Counter[int] = field(default_factory=Counter)
    verbs: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    restarts: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)


class Failures:
    """Distinct failing shapes, each with its first reproduction and a count."""

    def __init__(self) -> None:
        self.first: dict[tuple[str, ...], Failure] = {}
        self.count: Counter[tuple[str, ...]] = Counter()

    def add(self, failure: Failure) -> None:
        key = failure.key
        self.count[key] += 1
        self.first.setdefault(key, failure)

    def summary(self, limit: int = 80) -> str:
        rows = []
        for key, f in sorted(self.first.items())[:limit]:
            rows.append(f"- {f.what} | {f.label} | {f.problem or f.kind} ({self.count[key]}x): "
                        f"{f.repro}\n    -> {f.observed}")
        if len(self.first) > limit:
            rows.append(f"... and {len(self.first) - limit} more shapes")
        return "\n".join(rows)


class Closed(Exception):
    """The server closed the connection (args[0]: what was read last)."""


class ExpectedClose(Closed):
    """Closed after 205, 400 or 403, as the server says it will."""


class Desync(Closed):
    """The answers no longer line up with the lines: the client drops the connection."""


def check_status(raw: bytes) -> str | None:
    """What is wrong with a status line (with its line end), or None."""
    if not raw.endswith(b"\r\n"):
        return "status line does not end in CRLF"
    if not STATUS_LINE.match(raw):
        return "status line does not start with a 3-digit code and a space"
    if CONTROL.search(raw[:-2]):
        return "control character in the status line"
    if len(raw) > 512:
        return f"status line of {len(raw)} octets (max 512 with CRLF)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "status line is not valid UTF-8"
    if any(0x80 <= ord(c) <= 0x9F for c in text):
        return "C1 control character in the status line"
    return None


def check_block_line(raw: bytes) -> str | None:
    if not raw.endswith(b"\r\n"):
        return "block line ends in a bare LF"
    if b"\r" in raw[:-2]:
        return "block line holds a lone CR"
    if b"\x00" in raw:
        return "block line holds a NUL"
    return None


def shorten(data: bytes, keep: int = 160) -> str:
    """repr() of bytes, with the middle of a long value left out (its length is given)."""
    if len(data) <= keep:
        return repr(data)
    return f"{data[:keep - 40]!r} ... {data[-30:]!r} ({len(data)} octets)"


def shape(label: str, kind: str) -> tuple[str, str]:
    """What a hang is remembered by: mutated lines by their command only."""
    return label, "mutated" if kind.startswith("mutated") else kind


class Conn:
    """One fuzzing connection: a persona, what it selected, and the checks of every answer."""

    def __init__(self, run: Run, persona: str) -> None:
        self.run = run
        self.persona = persona
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.group: bytes | None = None
        self.user: str | None = None
        self.pending: Seg | None = None  # the line whose answer is being read
        self.last_status = b""

    @property
    def context(self) -> str:
        who = f"as {self.user}" if self.user else "anonymous"
        return f"[{who}{f', after GROUP {self.group!r}' if self.group else ''}]"

    async def open(self, group: bytes | None = None) -> None:
        """Connect, log the persona in, select ``group``: all within RESPONSE_TIMEOUT."""
        self.close()
        async with asyncio.timeout(RESPONSE_TIMEOUT):
            self.reader, self.writer = await asyncio.open_connection(
                "127.0.0.1", self.run.server.port, limit=16 * 1024 * 1024)
            greeting = await self.raw_line()
            if not greeting.startswith(b"20"):
                raise RuntimeError(f"greeting {greeting!r}")
            self.group, self.user = None, None
            if self.persona != "anon":
                await self.login(f"fuzz{self.persona}")
            if group:
                self.writer.write(b"GROUP " + group + b"\r\n")
                if (await self.raw_line()).startswith(b"211"):
                    self.group = group

    async def login(self, user: str) -> None:
        for line in (f"AUTHINFO USER {user}", f"AUTHINFO PASS {PASSWORD}"):
            self.writer.write(line.encode() + b"\r\n")  # type: ignore[union-attr]
            answer = await self.raw_line()
        if answer.startswith(b"281"):
            self.user = user
        else:  # a lockout policy may refuse the persona: go on anonymously, say so
            self.run.stats.notes.append(f"login as {user} answered {answer!r}; went on anonymously")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None

    async def raw_line(self) -> bytes:
        try:
            return await self.reader.readuntil(b"\n")  # type: ignore[union-attr]
        except asyncio.IncompleteReadError as exc:
            raise Closed(exc.partial[:200]) from None
        except (ConnectionError, OSError) as exc:
            raise Closed(str(exc).encode()) from None
        except asyncio.LimitOverrunError:
            raise Closed(b"line longer than 16 MB") from None

    def fail(self, what: str, seg: Seg, observed: str, problem: str = "") -> None:
        repro = f"{self.context} {shorten(seg.data)}"
        self.run.failures.add(Failure(what, seg.label, seg.kind, f"seed {SEED}: {repro}", observed,
                                      problem))

    async def block(self, seg: Seg, status: bytes) -> None:
        """Read a block to its dot; the first bad line of it is recorded. A bad line from an
        article this run posted is put down to that POST/IHAVE (it stored what it sends back)."""
        bad = False
        while True:
            raw = await self.raw_line()
            if raw == b".\r\n":
                return
            problem = check_block_line(raw)
            if problem and not bad:
                bad = True
                seen = f"{problem} in the answer {status[:80]!r} to {shorten(seg.data)}: {shorten(raw)}"
                posted = self.run.posted_in(status + raw)
                if posted is None:
                    self.fail("malformed", seg, seen, problem)
                else:
                    source, sent = posted
                    seen += f"; stored from {shorten(sent, 300)}"
                    self.fail("malformed", source, seen, f"{problem} (stored, then sent back)")

    @staticmethod
    def expects_block(seg: Seg, code: int, continuation: bool) -> bool | None:
        """True/False: a block follows; None: a code no reading of the verb explains."""
        if continuation:
            return False
        if any(code in MULTI_LINE.get(v, ()) for v in seg.verbs):
            return True
        if code in ANY_MULTI and not any(code in SINGLE_OK.get(v, ()) for v in seg.verbs):
            return None
        return False

    async def answer(self, seg: Seg, continuation: bool = False) -> int:
        """Read and check one whole answer to ``seg``; returns its code. A close is recorded."""
        self.pending = seg
        try:
            raw = await self.raw_line()
        except Closed as exc:
            self.fail("closed", seg, f"connection closed by the server unasked (last bytes {exc.args[0]!r})")
            raise
        self.last_status = raw
        problem = check_status(raw)
        if problem:
            self.fail("malformed", seg, f"{problem}: {shorten(raw)}", re.sub(r"\d+", "N", problem))
        code = int(raw[:3]) if raw[:3].isdigit() else 0
        self.run.stats.codes[code] += 1
        block = self.expects_block(seg, code, continuation)
        if block is None:
            self.fail("desync", seg, f"code {code} comes with a block for other commands, "
                      f"not this one: {raw[:200]!r}")
            raise Desync(raw)
        if block:
            try:
                await self.block(seg, raw)
            except Closed as exc:
                self.fail("closed", seg, f"connection closed inside the block of {raw[:80]!r} "
                          f"(last bytes {exc.args[0]!r})")
                raise
        if code == 403:
            self.fail("403", seg, raw[:300].decode("utf-8", "replace").rstrip())
        elif code == 211 and seg.verbs & {"GROUP", "LISTGROUP"}:
            words = seg.data.split()
            self.group = words[1] if len(words) > 1 else self.group
        elif code == 281:
            self.user = "(a fuzzed login)"
        if code in (205, 400, 403):
            await self.expect_close(seg, code)
        return code

    async def expect_close(self, seg: Seg, code: int) -> None:
        """After 205, 400 or 403 the server closes; only limits and idle time may say 400."""
        if code == 400 and not CLOSING_400.search(self.last_status.decode("utf-8", "replace")):
            self.fail("closed", seg, f"400 that is not a limit or the idle timeout: {self.last_status!r}")
        if code == 205:
            try:
                async with asyncio.timeout(RESPONSE_TIMEOUT / 2):
                    rest = await self.reader.read(200)  # type: ignore[union-attr]
            except (ConnectionError, OSError):
                rest = b""
            except TimeoutError:
                self.fail("hang", seg, "205, but the server kept the connection open")
                rest = b""
            if rest:
                self.fail("malformed", seg, f"data after 205: {rest!r}")
        raise ExpectedClose(self.last_status)

    async def run_burst(self, segs: list[Seg]) -> None:
        """Send the burst in one write, read every answer; bodies after 340/335, a SASL
        reply after a final 383. TimeoutError: an answer took over RESPONSE_TIMEOUT."""
        self.writer.write(b"".join(s.data for s in segs))  # type: ignore[union-attr]
        continuation = False
        for i, seg in enumerate(segs):
            async with asyncio.timeout(RESPONSE_TIMEOUT):
                code = await self.answer(seg, continuation)
            continuation = code == 383
            last = i == len(segs) - 1
            if code == 383 and last:
                await self.sasl_reply(seg)
            elif code in (340, 335):
                if not last:
                    self.fail("desync", seg, f"{code} to a line that is not a POST or IHAVE")
                    raise Desync(self.last_status)
                await self.send_body(seg, code)
            elif code == 382:
                self.fail("desync", seg, "382: TLS negotiation asked for, but TLS is not configured")
                raise Desync(self.last_status)

    async def sasl_reply(self, seg: Seg) -> None:
        blob = pick(self.run.gen.rng, [b"*", b"=", b"!!", base64.b64encode(b"\x00fuzzvictim\x00bad"),
                                       b"\xff\x00", b"a" * 600])
        reply = Seg(seg.data + blob + b"\r\n", seg.label, seg.kind + "+reply", frozenset())
        self.writer.write(blob + b"\r\n")  # type: ignore[union-attr]
        async with asyncio.timeout(RESPONSE_TIMEOUT):
            await self.answer(reply, continuation=True)

    async def send_body(self, seg: Seg, code: int) -> None:
        """An article after 340/335; its answer is read like any other (POST/IHAVE body shapes)."""
        words = seg.data.split()
        offered = words[1] if code == 335 and len(words) > 1 else None
        verb = "IHAVE" if code == 335 else "POST"
        avoid = {kind for label, kind in self.run.quarantined if label == f"{verb} body"}
        data, kind = self.run.gen.body(offered, avoid)
        self.run.stats.bodies[f"{verb} {kind}"] += 1
        shown = seg.data + data[:300] + (b"..." if len(data) > 300 else b"")
        body = Seg(shown, f"{verb} body", kind, frozenset())
        self.writer.write(data)  # type: ignore[union-attr]
        async with asyncio.timeout(RESPONSE_TIMEOUT):
            code = await self.answer(body)
        found = re.search(rb"<[^<>\s]+>", self.last_status) if code == 240 else None
        stored = offered if code == 235 else found.group() if found else None
        if stored:
            self.run.posted[stored] = (body, seg.data + data)


class Run:
    """The whole fuzz run: server, connections in rounds, hang attribution, counts."""

    def __init__(self, server: ServerProcess, gen: Generator) -> None:
        self.server = server
        self.gen = gen
        self.failures = Failures()
        self.stats = Stats()
        self.conns = [Conn(self, persona) for persona in CONNECTIONS]
        self.quarantined: set[tuple[str, str]] = set()
        self.posted: dict[bytes, tuple[Seg, bytes]] = {}  # Message-ID: the body line, what was sent

    def posted_in(self, text: bytes) -> tuple[Seg, bytes] | None:
        """The POST/IHAVE of this run that stored an article named in ``text``, if any."""
        for found in re.finditer(rb"<[^<>\s]+>", text):
            if found.group() in self.posted:
                return self.posted[found.group()]
        return None

    def burst(self) -> list[Seg]:
        """1-8 lines for one write. POST, IHAVE and QUIT end a burst: what follows them would
        be read as an article, or never read."""
        segs: list[Seg] = []
        want = self.gen.rng.choice([1, 1, 2, 3, 4, 6, 8])
        while len(segs) < want:
            line = self.gen.line()
            if shape(line.label, line.kind) in self.quarantined:
                self.stats.skipped += 1
                continue
            pieces = segments(line)
            for i, piece in enumerate(pieces):
                if piece.transfers or "QUIT" in piece.verbs:
                    pieces = pieces[:i + 1]
                    break
            ends = any(p.transfers or "QUIT" in p.verbs for p in pieces)
            segs += pieces
            self.stats.kinds[line.kind.split(":")[0]] += 1
            self.stats.verbs[line.label.split()[0]] += 1
            if ends:
                break
        return segs

    async def round(self) -> None:
        """One burst on every connection at once; then deal with any answer that did not come."""
        for conn in self.conns:
            if conn.writer is None:
                self.stats.reconnects += 1
                try:
                    await conn.open()
                except (TimeoutError, Closed, OSError, RuntimeError) as exc:
                    seg = Seg(b"(connect)", "(connect)", "connect", frozenset())
                    what = "hang" if isinstance(exc, TimeoutError) else "closed"
                    conn.fail(what, seg, f"a new connection got no greeting or login answer: {exc!r}")
                    await self.restart()
                    return
        work = [(conn, self.burst()) for conn in self.conns]
        outcomes = await asyncio.gather(*(self.one(conn, segs) for conn, segs in work))
        stuck = [outcome for outcome in outcomes if outcome is not None]
        if stuck:
            await self.incident(stuck)

    async def one(self, conn: Conn, segs: list[Seg]) -> tuple[Conn, list[Seg], Seg] | None:
        """Run one burst; returns (connection, burst, line) if an answer did not come in time."""
        self.stats.lines += len(segs)
        group = conn.group
        try:
            await conn.run_burst(segs)
        except Closed:
            conn.close()
        except TimeoutError:
            assert conn.pending is not None
            conn.group = group  # the replay starts where the burst started
            return conn, segs, conn.pending
        return None

    async def alive(self) -> bool:
        """A fresh connection gets its greeting and a DATE answer: the server is not stuck."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
                try:
                    await reader.readline()
                    writer.write(b"DATE\r\n")
                    return (await reader.readline()).startswith(b"111")
                finally:
                    writer.transport.abort()
        except (TimeoutError, OSError):
            return False

    async def incident(self, stuck: list[tuple[Conn, list[Seg], Seg]]) -> None:
        """Answers did not come. If the server still answers others, each stuck line hangs by
        itself. If the whole server is stuck, restart it and replay each suspect burst alone
        (on a connection like the one that sent it) to find the line that stops it."""
        if await self.alive():
            for conn, _, seg in stuck:
                conn.fail("hang", seg, f"no answer within {RESPONSE_TIMEOUT:.0f} s, while the "
                          "server answered other connections")
                self.quarantined.add(shape(seg.label, seg.kind))
                conn.close()
            return
        found = False
        for conn, segs, seg in stuck:
            await self.restart()
            probe = Conn(self, conn.persona)
            try:
                await probe.open(conn.group)
                await probe.run_burst(segs)
            except Closed:
                pass
            except TimeoutError:
                culprit = probe.pending or seg
                probe.fail("hang", culprit, "the whole server stopped answering (no greeting or DATE "
                           f"for a new connection within {PROBE_TIMEOUT:.0f} s); replayed alone on a "
                           "restarted server, it stopped it again")
                self.quarantined.add(shape(culprit.label, culprit.kind))
                found = True
            probe.close()
        if not found:
            conn, _, seg = stuck[0]
            conn.fail("hang", seg, "the whole server stopped answering; replayed alone, no suspect "
                      "burst did it again")
        await self.restart()

    async def restart(self) -> None:
        for conn in self.conns:
            conn.close()
        self.stats.restarts += 1
        await self.server.restart()

    async def finish(self) -> None:
        """Every connection still open must still answer DATE: it stayed usable."""
        for conn in self.conns:
            if conn.writer is None:
                continue
            seg = Seg(b"DATE\r\n", "DATE", "final-check", frozenset({"DATE"}))
            conn.writer.write(seg.data)
            try:
                async with asyncio.timeout(RESPONSE_TIMEOUT):
                    if await conn.answer(seg) != 111:
                        conn.fail("malformed", seg, f"DATE at the end answered {conn.last_status!r}")
            except Closed:
                pass
            except TimeoutError:
                conn.fail("hang", seg, "no answer to DATE at the end")
            conn.close()


def report(run: Run, seconds: float, verbs: list[str]) -> str:
    s = run.stats
    codes = ", ".join(f"{c}: {n}" for c, n in sorted(s.codes.items()))
    bodies = sum(s.bodies.values())
    per_verb = ", ".join(f"{v} {s.verbs[v]}" for v in verbs)
    lines = [
        f"fuzz seed {SEED}: {s.lines:,} command lines and {bodies} POST/IHAVE bodies in {seconds:.1f} s "
        f"over {len(CONNECTIONS)} connections ({s.reconnects} reconnects, {s.restarts} server restarts, "
        f"{s.skipped} lines of shapes that had hung not sent)",
        f"responses by code: {codes}",
        f"lines by command: {per_verb}, (noise) {s.verbs['(noise)']}",
        f"lines by kind: {', '.join(f'{k} {n}' for k, n in sorted(s.kinds.items()))}",
        f"bodies: POST {sum(n for k, n in s.bodies.items() if k.startswith('POST'))}, "
        f"IHAVE {sum(n for k, n in s.bodies.items() if k.startswith('IHAVE'))}",
    ]
    lines += [f"note: {n}" for n in dict.fromkeys(s.notes)]
    return "\n".join(lines)


async def fuzz(tmp_path: Path) -> tuple[Run, float, list[str]]:
    db = tmp_path / "fuzz.sqlite3"
    config = tmp_path / "fuzz.toml"
    config.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(str(config))
    assert settings.server.feed_access == "loopback" and settings.auth.failure_delay == 0.0
    ids = await seed(db)
    verbs = sorted(load_all())
    server = ServerProcess(tmp_path, db, config)
    await server.start()
    run = Run(server, Generator(random.Random(SEED), verbs, ids))
    t0 = time.monotonic()
    try:
        while run.stats.lines < LINES:
            if time.monotonic() - t0 > GIVE_UP_AFTER:
                run.failures.add(Failure("hang", "(run)", "give-up", f"seed {SEED}",
                                         f"stopped after {run.stats.lines} lines: over {GIVE_UP_AFTER:.0f} s"))
                break
            await run.round()
        await run.finish()
    finally:
        server.kill()
    return run, time.monotonic() - t0, verbs


async def test_fuzz_every_line_gets_a_defined_answer(tmp_path):
    """Issue 13: random and mutated lines for every command: no 403, close, bad line or hang."""
    print(f"fuzz seed {SEED} (set NNTPD_FUZZ_SEED to change it), {LINES} lines", flush=True)
    run, seconds, verbs = await fuzz(tmp_path)
    print(report(run, seconds, verbs), flush=True)
    exceptions = run.server.exceptions()
    if exceptions:
        print("server log, exceptions: " + "; ".join(f"{n}x {e}" for e, n in exceptions.most_common(20)))
    problems = []
    if run.failures.first:
        problems.append(f"{len(run.failures.first)} failing shapes (reproduce the run with "
                        f"NNTPD_FUZZ_SEED={SEED}):\n{run.failures.summary()}")
    if run.stats.lines < LINES:
        problems.append(f"only {run.stats.lines} of {LINES} lines sent")
    rare = [v for v in verbs if run.stats.verbs[v] < 50]
    if rare:
        problems.append(f"commands sent fewer than 50 times: {rare}")
    for verb in ("POST", "IHAVE"):
        sent = sum(n for k, n in run.stats.bodies.items() if k.startswith(verb))
        if sent < 50:
            problems.append(f"only {sent} {verb} bodies sent")
    assert not problems, f"fuzz seed {SEED}: " + "\n".join(problems)
