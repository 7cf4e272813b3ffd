"""What the fuzz test (``test_fuzz.py``) sends: command lines and POST/IHAVE bodies.

The hostile and valid argument values (wildmats, groups, Message-IDs, ranges, header
fields, dates, keywords, user names), the ``Generator`` that builds every command line
from one seeded ``random.Random`` (valid lines, lines with a bad, extra or long
argument, byte-level mutations, reshaped separators and line ends, random noise) and
the articles sent after 340/335, dot-stuffed by ``stuff``. It opens no connection and
reads no answer; the seed, the host name and the groups live here because the lines
name them and the test seeds its database with the same values.
"""

from __future__ import annotations

import base64
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

SEED = int(os.environ.get("NNTPD_FUZZ_SEED", "397713"))
PATH_HOST = "fuzz.example"
MAX_ARTICLE = 64 * 1024  # oversized articles are cheap to send

LONG_GROUP = "fuzz." + "a" * 80
GROUPS = ["fuzz.alpha", "fuzz.beta", "fuzz.private.staff", LONG_GROUP, "local.test"]


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
