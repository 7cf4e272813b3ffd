"""How the fuzz test (``test_fuzz.py``) reads and judges the server's answers.

A generated line is cut into the pieces the server will see (``segments``, ``Seg``);
a ``Conn`` sends a burst of them on one connection, reads every answer within
``RESPONSE_TIMEOUT`` and checks it: the status line (``check_status``), each line of a
multi-line block (``check_block_line``, ``MULTI_LINE``), no 403 and no close the client
did not ask for. What is wrong is recorded as a ``Failure``, one per distinct shape, in
``Failures``; counts go to ``Stats``. Starting the server and running the rounds is
left to ``test_fuzz.Run``, which owns the connections.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fuzz_lines import SEED, Line, pick

if TYPE_CHECKING:  # for annotations only: test_fuzz imports this module, not the reverse
    from test_fuzz import Run

RESPONSE_TIMEOUT = 5.0  # an answer (status and block) slower than this is a hang
PASSWORD = "fuzz-password-1"

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
