"""The workload: the articles, the phases, and the check of every answer.

A phase runs against a ``Target`` (a server on a port, a group, a client
kind). Answers are checked for what matters to a newsreader and is the
same on every server: status codes, counts, article numbers, Message-IDs,
overview fields and bodies byte for byte. Harmless differences between
servers are accepted: the host in Xref (``xref_host=None``), the header
order and the extra headers a server adds, ``220 0 <id>`` instead of the
number for ARTICLE by Message-ID, the text after the status code.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nntp_client import CRLF, Conn, ProtocolError, split_block
from procfs import all_cpu, cpu_seconds, machine_busy, process_tree, top_others

PATH_HOST = "bench.example"
MAX_ERRORS_PER_PHASE = 50

WORDS = (
    "the printer driver install fails after the update and the log says timeout "
    "when I connect over vpn the client reports error 0x80070005 please advise "
    "settings network firmware version cable restart reboot config file path "
    "naïve café größe Ärger déjà-vu 日本語 ошибка señal ñandú über façade"
).split()


# -- the articles ------------------------------------------------------------


def stuff(body: bytes) -> bytes:
    """CRLF-terminated lines, dot-stuffed (RFC 3977 3.1.1)."""
    lines = body.split(CRLF)[:-1]
    return b"".join((b"." + ln if ln[:1] == b"." else ln) + CRLF for ln in lines)


@dataclass
class Post:
    index: int
    message_id: str
    subject: str
    from_: str
    references: str
    body: bytes  # CRLF line ends, ends with CRLF
    lines: int
    _body_wire: bytes | None = None
    _expect: tuple[bytes, bytes, bytes, bytes, bytes] | None = None

    def raw(self, group: str) -> bytes:
        """The article as stored: header, empty line, body (not dot-stuffed)."""
        head = [
            f"From: {self.from_}",
            f"Newsgroups: {group}",
            f"Subject: {self.subject}",
            f"Message-ID: {self.message_id}",
        ]
        if self.references:
            head.append(f"References: {self.references}")
        head.append("Content-Type: text/plain; charset=UTF-8")
        head.append("Content-Transfer-Encoding: 8bit")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + self.body

    def wire(self, group: str) -> bytes:
        """The article as sent after 340: dot-stuffed, CRLF, with the final '.'."""
        return stuff(self.raw(group)) + b".\r\n"

    @property
    def body_wire(self) -> bytes:
        if self._body_wire is None:
            self._body_wire = stuff(self.body)
        return self._body_wire

    @property
    def expect(self) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """Overview fields as bytes: subject, from, message-id, references, lines."""
        if self._expect is None:
            self._expect = (self.subject.encode(), self.from_.encode(), self.message_id.encode(),
                            self.references.encode(), str(self.lines).encode())
        return self._expect


def make_body(rng: random.Random, size: int, index: int) -> bytes:
    """A text body of about ``size`` bytes (never more), some UTF-8, some lines starting with '.'."""
    out: list[bytes] = []
    total = 0
    first = f"Post {index}: ".encode()
    while True:
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        line = " ".join(words).encode()
        if not out:
            line = first + line
        elif rng.random() < 0.05:
            line = b"." + line  # exercises dot-stuffing both ways
        elif rng.random() < 0.05:
            line = b""
        if out and total + len(line) + 2 > size:
            break
        out.append(line)
        total += len(line) + 2
    return b"".join(ln + CRLF for ln in out)


def make_posts(n: int, seed: int, run_id: str) -> list[Post]:
    """n threaded articles: 30% roots, the rest replies naming a root (and half of them a reply)."""
    rng = random.Random(seed)
    posts: list[Post] = []
    roots: list[Post] = []
    replies: dict[str, list[str]] = {}
    for i in range(n):
        mid = f"<b{i}.{run_id}@{PATH_HOST}>"
        user = rng.randint(1, 400)
        from_ = f"User {user} <user{user}@example.com>"
        size = rng.randint(300, 4096)
        body = make_body(rng, size, i)
        if i == 0 or rng.random() < 0.30:
            subject = f"Question {i}: {' '.join(rng.choice(WORDS[:40]) for _ in range(5))}"
            post = Post(i, mid, subject, from_, "", body, body.count(CRLF))
            roots.append(post)
            replies[mid] = []
        else:
            root = rng.choice(roots)
            refs = [root.message_id]
            if replies[root.message_id] and rng.random() < 0.5:
                refs.append(rng.choice(replies[root.message_id]))
            replies[root.message_id].append(mid)
            post = Post(i, mid, "Re: " + root.subject, from_, " ".join(refs), body, body.count(CRLF))
        posts.append(post)
    return posts


# -- bookkeeping --------------------------------------------------------------


@dataclass
class Phase:
    name: str
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    lines: int = 0
    unit: str = "req/s"
    extra: dict[str, Any] = field(default_factory=dict)

    def rate(self) -> float:
        count = self.lines if self.unit == "lines/s" else self.ops
        return count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def summary(self) -> dict[str, Any]:
        out = {
            "ops": self.ops, "errors": self.errors, "seconds": round(self.seconds, 4),
            "rate": round(self.rate(), 1), "unit": self.unit, "lines": self.lines,
            "p50_ms": round(self.pct(0.50), 3), "p99_ms": round(self.pct(0.99), 3),
            "max_ms": round(max(self.latencies, default=0) * 1000, 3),
        }
        out.update(self.extra)
        return out


class Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, phase: Phase, text: str, where: str = "") -> None:
        phase.errors += 1
        if phase.errors <= MAX_ERRORS_PER_PHASE:
            self.items.append(f"{where}{phase.name}: {text}")
        elif phase.errors == MAX_ERRORS_PER_PHASE + 1:
            self.items.append(f"{where}{phase.name}: further errors of this phase only counted")


@dataclass
class Target:
    """A server under test, the group the workload uses there, and the kind of client."""

    label: str  # "ours", "INN", "ceiling"
    port: int
    group: str
    quickack: bool
    xref_host: str | None = PATH_HOST  # None: any host in Xref (INN uses its pathhost)
    open_limit: int = 64  # connections being opened at once (INN's peer limit is 8)
    pid: int | None = None  # the server process, for its CPU time per phase (ours, the ceiling's)
    _sem: asyncio.Semaphore | None = None

    def __post_init__(self) -> None:
        self.group_b = f"{self.group}:".encode()
        self.xref_prefix = (f"Xref: {self.xref_host} {self.group}:".encode()
                            if self.xref_host is not None else None)

    @property
    def mode(self) -> str:
        return "quick-ACK" if self.quickack else "ordinary"

    @property
    def where(self) -> str:
        return f"[{self.label}, {self.mode}] "

    async def connect(self) -> Conn:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.open_limit)
        async with self._sem:
            return await Conn.open(self.port, quickack=self.quickack)


# -- checks -------------------------------------------------------------------


def xref_ok(value: bytes, target: Target, number: int) -> bool:
    """``Xref: host group:number ...`` names this group and number (and our host, for ours)."""
    if target.xref_prefix is not None:
        return value == target.xref_prefix + b"%d" % number
    words = value.split()
    return len(words) >= 3 and words[0] == b"Xref:" and target.group_b + b"%d" % number in words[2:]


def check_overview_line(fields: list[bytes], number: int, post: Post, target: Target) -> str | None:
    """None if an OVER line (split at tabs, bytes) is right for ``post`` at ``number``."""
    if len(fields) < 9:
        return f"{number}: {len(fields)} fields"
    subject, from_, mid, refs, lines = post.expect
    if fields[0] != b"%d" % number or fields[1] != subject or fields[2] != from_ \
            or fields[4] != mid or fields[5] != refs or fields[7] != lines:
        names = ("number", "subject", "from", "message-id", "references", "lines")
        got = (fields[0], fields[1], fields[2], fields[4], fields[5], fields[7])
        want = (b"%d" % number, subject, from_, mid, refs, lines)
        for name, g, w in zip(names, got, want):
            if g != w:
                return f"{number}: {name} {g.decode(errors='replace')!r} != {w.decode(errors='replace')!r}"
    if not xref_ok(fields[8], target, number):
        return f"{number}: xref {fields[8]!r} does not name {target.group}:{number}"
    if not fields[6].isdigit() or int(fields[6]) <= len(post.body):
        return f"{number}: :bytes {fields[6]!r} not more than the body's {len(post.body)}"
    return None


def check_article(status: str, raw: bytes, post: Post, number: int, by_id: bool,
                  target: Target) -> str | None:
    """An ARTICLE answer: status, body byte for byte, Message-ID, Subject and Xref headers."""
    words = status.split()
    numbers_ok = ("0", str(number)) if by_id else (str(number),)
    if len(words) < 3 or words[0] != "220" or words[1] not in numbers_ok or words[2] != post.message_id:
        return f"{post.message_id} (#{number}): status {status!r}"
    sep = raw.find(b"\r\n\r\n")
    if sep < 0:
        return f"{post.message_id} (#{number}): no empty line after the header"
    header = b"\r\n" + raw[: sep + 2]
    body = raw[sep + 4: -3]
    if body != post.body_wire:
        return (f"{post.message_id} (#{number}): body differs "
                f"({len(body)} vs {len(post.body_wire)} bytes as sent)")
    for needle in (f"\r\nMessage-ID: {post.message_id}\r\n", f"\r\nSubject: {post.subject}\r\n"):
        if needle.encode() not in header:
            return f"{post.message_id} (#{number}): header lacks {needle.strip()!r}"
    at = header.find(b"\r\nXref: ")
    if at < 0:
        return f"{post.message_id} (#{number}): no Xref header"
    xref = header[at + 2: header.find(b"\r\n", at + 2)]
    if not xref_ok(xref, target, number):
        return f"{post.message_id} (#{number}): {xref!r} does not name {target.group}:{number}"
    return None


# -- the phases ---------------------------------------------------------------


async def phase_post(target: Target, posts: list[Post], conns: int, errors: Errors,
                     name: str = "POST") -> Phase:
    phase = Phase(name, unit="articles/s")
    pending = iter(posts)
    wires = {p.index: p.wire(target.group) for p in posts}
    accepted: list[Post] = []

    async def worker() -> None:
        conn = await target.connect()
        try:
            for post in pending:
                t0 = time.perf_counter()
                status = await conn.cmd("POST")
                if not status.startswith("340"):
                    errors.add(phase, f"{post.message_id}: POST answered {status!r}", target.where)
                    continue
                conn.send(wires[post.index])
                final = await conn.line()
                phase.latencies.append(time.perf_counter() - t0)
                phase.ops += 1
                if not final.startswith("240"):
                    errors.add(phase, f"{post.message_id}: {final!r}", target.where)
                elif post.message_id not in final.split():
                    errors.add(phase, f"{post.message_id}: 240 names another id: {final!r}",
                               target.where)
                else:
                    accepted.append(post)
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    phase.seconds = time.perf_counter() - t0
    accepted.sort(key=lambda p: p.index)
    phase.extra["accepted"] = len(accepted)
    phase.accepted = accepted  # type: ignore[attr-defined]
    return phase


async def select_group(conn: Conn, target: Target, count: int, phase: Phase, errors: Errors,
                       low: int = 1) -> bool:
    status = await conn.cmd(f"GROUP {target.group}")
    want = f"211 {count} {low} {low + count - 1} {target.group}"
    if status != want:
        errors.add(phase, f"GROUP answered {status!r}, expected {want!r}", target.where)
        return False
    return True


async def whole_group_answers(conn: Any, target: Target, phase: Phase, errors: Errors,
                              command: str, code: bytes, count: int, repeat: int,
                              min_seconds: float) -> AsyncIterator[tuple[int, bool, list[bytes]]]:
    """Send ``command`` (a whole-group OVER or HDR) ``repeat`` times, and more until
    ``min_seconds`` of answers (at most 40 times ``repeat``); each answer is timed into ``phase``.

    Yields (run, first, lines) for the first answer and for each later one that differs
    from it; one equal byte for byte counts ``count`` lines without being split again.
    """
    first_raw: bytes | None = None
    run = -1
    while (run := run + 1) < repeat or (run < repeat * 40 and phase.seconds < min_seconds):
        t0 = time.perf_counter()
        status, raw = await conn.request(command, code)
        if raw is None:
            errors.add(phase, f"{command} answered {status!r}", target.where)
            continue
        elapsed = time.perf_counter() - t0
        phase.latencies.append(elapsed)
        phase.seconds += elapsed
        phase.ops += 1
        if raw == first_raw:
            phase.lines += count
            continue
        lines = split_block(raw)
        phase.lines += len(lines)
        if len(lines) != count:
            errors.add(phase, f"{command} gave {len(lines)} lines, expected {count}", target.where)
        first = first_raw is None
        if first:
            first_raw = raw
        yield run, first, lines


async def phase_over_all(target: Target, count: int, repeat: int, errors: Errors,
                         by_id: dict[str, Post], min_seconds: float = 0.0,
                         ) -> tuple[Phase, dict[int, Post]]:
    """OVER 1- of the whole group; the first answer also gives the number -> article map.

    The first answer is checked field by field; it also becomes the reference
    (``phase.verified``, the line of each number) the later answers and the
    OVER windows must equal byte for byte, which costs the client far less
    than parsing every line again.
    """
    phase = Phase("OVER whole group", unit="lines/s")
    numbers: dict[int, Post] = {}
    verified: list[bytes] = [b""]
    phase.verified = verified  # type: ignore[attr-defined]
    conn = await target.connect()
    try:
        if not await select_group(conn, target, count, phase, errors):
            return phase, numbers
        answers = whole_group_answers(conn, target, phase, errors, "OVER 1-", b"224", count,
                                      repeat, min_seconds)
        async for run, first, lines in answers:
            for expected, line in enumerate(lines, 1):
                fields = line.split(b"\t")
                if first:
                    post = by_id.get(fields[4].decode(errors="replace")) if len(fields) > 4 else None
                    if post is None:
                        errors.add(phase, f"line {expected}: unknown Message-ID {line[:100]!r}",
                                   target.where)
                        continue
                    problem = check_overview_line(fields, expected, post, target)
                    if problem:
                        errors.add(phase, problem, target.where)
                        continue
                    numbers[expected] = post
                    verified.append(line + CRLF)
                elif fields[0] != b"%d" % expected or numbers.get(expected) is None \
                        or fields[4] != numbers[expected].expect[2]:
                    errors.add(phase, f"run {run}: line {expected} is {line[:100]!r}", target.where)
    finally:
        await conn.close()
    return phase, numbers


async def run_requests(target: Target, conns: int, count: int, count_group: int,
                       phase: Phase, make: Callable[[random.Random], Any], errors: Errors,
                       select: bool = True, min_seconds: float = 0.0) -> None:
    """At least ``count`` requests spread over ``conns`` connections, and more until
    ``min_seconds`` have passed (at most 50 times ``count``); make(rng) -> coroutine fn(conn).

    The clock starts when every connection is open (and has selected the group)."""
    issued = 0
    ready = 0
    start = asyncio.Event()
    begun = 0.0

    def more() -> bool:
        nonlocal issued
        if issued < count or (issued < count * 50 and time.perf_counter() - begun < min_seconds):
            issued += 1
            return True
        return False

    def arrived() -> None:
        nonlocal ready, begun
        ready += 1
        if ready == conns:
            begun = time.perf_counter()
            start.set()

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            conn = await target.connect()
        except BaseException:
            arrived()
            raise
        try:
            ok = not select or await select_group(conn, target, count_group, phase, errors)
            arrived()
            await start.wait()
            while ok and more():
                request = make(rng)
                t0 = time.perf_counter()
                problem = await request(conn)
                phase.latencies.append(time.perf_counter() - t0)
                phase.ops += 1
                if problem:
                    errors.add(phase, problem, target.where)
            phase.seconds = max(phase.seconds, time.perf_counter() - begun)
        finally:
            await conn.close()

    await asyncio.gather(*(worker(1000 + i) for i in range(conns)))


def over_window(numbers: Mapping[int, Post], target: Target, width: int = 100,
                verified: list[bytes] | None = None) -> Any:
    """OVER of ``width`` articles at a random position. With ``verified`` (the checked
    lines of OVER 1-, see phase_over_all) the answer must equal them byte for byte;
    without, every line is checked field by field."""
    count = len(numbers)

    def make(rng: random.Random) -> Any:
        low = rng.randint(1, max(1, count - width + 1))
        high = min(count, low + width - 1)

        async def request(conn: Conn) -> str | None:
            status, raw = await conn.request(f"OVER {low}-{high}", b"224")
            if raw is None:
                return f"OVER {low}-{high} answered {status!r}"
            if verified is not None and raw == b"".join(verified[low:high + 1]) + b".\r\n":
                return None
            lines = split_block(raw)
            if len(lines) != high - low + 1:
                return f"OVER {low}-{high} gave {len(lines)} lines"
            for number, line in zip(range(low, high + 1), lines):
                problem = check_overview_line(line.split(b"\t"), number, numbers[number], target)
                if problem:
                    return f"OVER {low}-{high}: {problem}"
                if verified is not None and line + CRLF != verified[number]:
                    return f"OVER {low}-{high}: line {number} differs from OVER 1-: {line[:100]!r}"
            return None

        return request

    return make


def article_fetch(numbers: Mapping[int, Post], by_id: bool, target: Target) -> Any:
    count = len(numbers)

    def make(rng: random.Random) -> Any:
        number = rng.randint(1, count)
        post = numbers[number]
        arg = post.message_id if by_id else str(number)

        async def request(conn: Conn) -> str | None:
            status, raw = await conn.request(f"ARTICLE {arg}", b"220")
            if raw is None:
                return f"ARTICLE {arg} answered {status!r}"
            return check_article(status, raw, post, number, by_id, target)

        return request

    return make


def group_request(target: Target, count: int) -> Any:
    want = f"211 {count} 1 {count} {target.group}"

    def make(rng: random.Random) -> Any:
        async def request(conn: Conn) -> str | None:
            status = await conn.cmd(f"GROUP {target.group}")
            return None if status == want else f"GROUP answered {status!r}, expected {want!r}"

        return request

    return make


def list_active_request(target: Target, count: int) -> Any:
    def make(rng: random.Random) -> Any:
        async def request(conn: Conn) -> str | None:
            status, raw = await conn.request("LIST ACTIVE", b"215")
            if raw is None:
                return f"LIST ACTIVE answered {status!r}"
            lines = split_block(raw)
            for line in lines:
                words = line.split()
                if words and words[0].decode(errors="replace") == target.group:
                    try:
                        high, low = int(words[1]), int(words[2])
                    except (IndexError, ValueError):
                        return f"LIST ACTIVE: bad line {line[:100]!r}"
                    if (high, low) != (count, 1):
                        return f"LIST ACTIVE: {line[:100]!r}, expected high {count} low 1"
                    return None
            return f"LIST ACTIVE: no line for {target.group} among {len(lines)}"

        return request

    return make


async def phase_hdr(target: Target, numbers: Mapping[int, Post], repeat: int,
                    errors: Errors, min_seconds: float = 0.0) -> Phase:
    phase = Phase("HDR Subject whole group", unit="lines/s")
    count = len(numbers)
    conn = await target.connect()
    try:
        if not await select_group(conn, target, count, phase, errors):
            return phase
        answers = whole_group_answers(conn, target, phase, errors, "HDR Subject 1-", b"225", count,
                                      repeat, min_seconds)
        async for _run, _first, lines in answers:
            for number, line in enumerate(lines, 1):
                want = b"%d %s" % (number, numbers[number].expect[0]) if number in numbers else None
                if line != want:
                    errors.add(phase, f"HDR line {number}: {line[:100]!r} != {want!r}", target.where)
                    break
    finally:
        await conn.close()
    return phase


async def guarded(coro: Any, phase_name: str, errors: Errors, target: Target,
                  timeout: float) -> Any:
    """Run a phase with a time limit; a timeout or a broken connection is an error, not a crash."""
    try:
        return await asyncio.wait_for(coro, timeout)
    except asyncio.TimeoutError:
        failed = Phase(phase_name)
        errors.add(failed, f"did not finish within {timeout:.0f} s (server stalled?)", target.where)
        return failed
    except (OSError, ProtocolError, asyncio.IncompleteReadError, ConnectionError) as exc:
        failed = Phase(phase_name)
        errors.add(failed, f"connection failed: {exc.__class__.__name__}: {exc}", target.where)
        return failed


async def measured(target: Target, name: str, coro: Any, errors: Errors, timeout: float,
                   log: Callable[[str], None]) -> Any:
    """Run one phase (guarded), adding the server's and the machine's CPU use to its extra."""
    log(f"  {target.label:7} {target.mode:9} {name} ...")
    procs0 = all_cpu()
    cpu0, box0, t0 = cpu_seconds(target.pid), machine_busy(), time.perf_counter()
    me0 = time.process_time()
    result = await guarded(coro, name, errors, target, timeout)
    cpu1, box1, wall = cpu_seconds(target.pid), machine_busy(), time.perf_counter() - t0
    me1 = time.process_time()
    mine = {os.getpid()} | (set(process_tree(target.pid)) if target.pid else set())
    phase = result[0] if isinstance(result, tuple) else result
    # who else used the CPU meanwhile (INN's processes, kernel threads, other work on the machine)
    phase.extra["other_processes"] = top_others(procs0, all_cpu(), mine, wall)
    if wall > 0:
        phase.extra["client_cpu_pct"] = round((me1 - me0) / wall * 100, 1)
    if cpu0 is not None and cpu1 is not None and wall > 0:
        phase.extra["server_cpu_s"] = round(cpu1 - cpu0, 3)
        phase.extra["server_cpu_pct"] = round((cpu1 - cpu0) / wall * 100, 1)
    if box0 is not None and box1 is not None and box1[2] > box0[2]:
        total = box1[2] - box0[2]
        phase.extra["machine_cpu_pct"] = round((box1[0] - box0[0]) / total * 100, 1)
        phase.extra["steal_pct"] = round((box1[1] - box0[1]) / total * 100, 1)
    return result


@dataclass
class WorkloadSettings:
    connections: int = 8
    windows: int = 1000
    fetches: int = 2000
    repeat: int = 5
    latency_requests: int = 300
    timeout: float = 900.0
    min_seconds: float = 2.0


class Turns:
    """Two workloads that take turns phase by phase (ours, INN, ours, INN, ...).

    Run one after the other, a phase of ours and the same phase of INN were
    one to two minutes apart, and this machine's speed moves by up to 25%
    within minutes: the ratio of the two said as much about the moment as
    about the servers. Taking turns puts each pair seconds apart and never
    runs two phases at once. A workload holds its turn through its phase and
    the work after it (checking, indexing the answers), and passes it when it
    reaches its next phase or ends.
    """

    def __init__(self, first: str, second: str) -> None:
        self._order = (first, second)
        self._turn = 0
        self._done: set[str] = set()
        self._changed = asyncio.Condition()

    def _mine(self, who: str) -> bool:
        return self._order[self._turn % 2] == who or (set(self._order) - {who}) <= self._done

    async def wait(self, who: str, started: bool) -> None:
        """Before a phase: pass the turn if ``who`` holds it (``started``), then wait for it."""
        async with self._changed:
            if started:
                self._turn += 1
                self._changed.notify_all()
            await self._changed.wait_for(lambda: self._mine(who))

    async def finish(self, who: str) -> None:
        async with self._changed:
            self._done.add(who)
            self._turn += 1
            self._changed.notify_all()


async def run_workload(target: Target, posts: list[Post], cfg: WorkloadSettings,
                       errors: Errors, log: Callable[[str], None] = print,
                       turns: Turns | None = None) -> list[Phase]:
    """The whole workload on one target, in order; returns its phases.

    With ``turns`` it alternates with another workload phase by phase.
    """
    phases: list[Phase] = []
    by_id = {p.message_id: p for p in posts}
    started = False

    async def step(name: str, coro: Any) -> Any:
        nonlocal started
        if turns is not None:
            await turns.wait(target.label, started)
            started = True
        return await measured(target, name, coro, errors, cfg.timeout, log)

    # The client's own garbage collector must not stall the measurements: a
    # full collection over the tens of thousands of articles held here takes
    # ~10 ms and showed as bursts of slow requests (p99, p99.9). What exists
    # before a phase lives to the end of the workload anyway, so it is moved
    # out of the collector's sight (gc.freeze) until the workload ends.
    gc.collect()
    gc.freeze()
    try:
        return await _workload(target, posts, cfg, errors, phases, by_id, step)
    finally:
        if turns is None:
            gc.unfreeze()
        else:  # the other workload may still run: the caller unfreezes once both have ended
            await turns.finish(target.label)


async def _workload(target: Target, posts: list[Post], cfg: WorkloadSettings, errors: Errors,
                    phases: list[Phase], by_id: dict[str, Post],
                    step: Callable[[str, Any], Any]) -> list[Phase]:
    C = cfg.connections
    post = await step("POST", phase_post(target, posts, C, errors))
    phases.append(post)
    accepted = getattr(post, "accepted", [])
    count = len(accepted)
    if count == 0:
        return phases
    result = await step("OVER whole group", phase_over_all(target, count, cfg.repeat, errors, by_id,
                                                          cfg.min_seconds))
    if isinstance(result, Phase):
        phases.append(result)
        return phases
    over_all, numbers = result
    verified = getattr(over_all, "verified", None)
    phases.append(over_all)
    gc.collect()
    gc.freeze()  # the number map and the verified lines, see run_workload
    if len(numbers) != count:
        errors.add(over_all, "cannot map article numbers to Message-IDs; skipping the rest",
                   target.where)
        return phases

    async def requests(name: str, conns: int, n: int, make: Any) -> Phase:
        phase = Phase(name)
        await run_requests(target, conns, n, count, phase, make, errors, min_seconds=cfg.min_seconds)
        return phase

    plan = [
        ("OVER 100-article window, 1 conn", 1, cfg.windows, over_window(numbers, target, verified=verified)),
        (f"OVER 100-article window, {C} conns", C, cfg.windows,
         over_window(numbers, target, verified=verified)),
        ("ARTICLE by number", C, cfg.fetches, article_fetch(numbers, False, target)),
        ("ARTICLE by Message-ID", C, cfg.fetches, article_fetch(numbers, True, target)),
    ]
    for name, conns, n, make in plan:
        phases.append(await step(name, requests(name, conns, n, make)))
    phases.append(await step("HDR Subject whole group",
                             phase_hdr(target, numbers, cfg.repeat, errors, cfg.min_seconds)))
    phases.append(await step("GROUP", requests("GROUP", 1, cfg.latency_requests,
                                               group_request(target, count))))
    phases.append(await step("LIST ACTIVE", requests("LIST ACTIVE", 1, cfg.latency_requests,
                                                     list_active_request(target, count))))
    return phases
