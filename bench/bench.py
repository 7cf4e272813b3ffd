#!/usr/bin/env python3
"""End-to-end benchmark of nntpd over real TCP, with a checked answer for every request.

It starts ``nntpd serve`` as a subprocess on a fresh temporary SQLite
database and a free port (after ``nntpd init``), then measures:

1. POST of N threaded articles (30% roots, the rest replies whose
   References names a random earlier root) over C connections;
2. OVER of the whole group (lines/s);
3. OVER of 100-article windows at random positions over C connections;
4. ARTICLE by number and by Message-ID over C connections;
5. HDR Subject over the whole group (lines/s).

Every answer is checked (status codes, line counts, article numbers,
Message-IDs, bodies, overview fields); a wrong answer counts as an error,
is reported and makes the exit status 1. The client is the standard
library's asyncio only (no nntplib), so its own CPU cost is part of what
is measured: on a small machine client and server share the cores.

Usage: .venv/bin/python bench/bench.py [--articles N] [--connections C]
                                       [--port P] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GROUP = "local.test"
PATH_HOST = "bench.example"
CRLF = b"\r\n"
MAX_ERRORS_SHOWN = 15

WORDS = (
    "the printer driver install fails after the update and the log says timeout "
    "when I connect over vpn the client reports error 0x80070005 please advise "
    "settings network firmware version cable restart reboot config file path "
    "naïve café größe Ärger déjà-vu 日本語 ошибка señal ñandú über façade"
).split()


# -- the articles ------------------------------------------------------------


@dataclass
class Post:
    index: int
    message_id: str
    subject: str
    from_: str
    references: str
    body: bytes  # CRLF line ends, ends with CRLF
    lines: int

    def wire(self) -> bytes:
        """The article as sent after 340: dot-stuffed, CRLF, with the final '.'."""
        head = [
            f"From: {self.from_}",
            f"Newsgroups: {GROUP}",
            f"Subject: {self.subject}",
            f"Message-ID: {self.message_id}",
        ]
        if self.references:
            head.append(f"References: {self.references}")
        head.append("Content-Type: text/plain; charset=UTF-8")
        head.append("Content-Transfer-Encoding: 8bit")
        text = ("\r\n".join(head) + "\r\n\r\n").encode() + self.body
        lines = text.split(CRLF)[:-1]
        return b"".join((b"." + ln if ln[:1] == b"." else ln) + CRLF for ln in lines) + b".\r\n"


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


# -- the client ----------------------------------------------------------------


class ProtocolError(Exception):
    """A wrong answer from the server."""


class Conn:
    """One NNTP connection: status lines and dot-terminated blocks."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        conn = cls(reader, writer)
        greeting = await conn.line()
        if not greeting.startswith("200"):
            raise ProtocolError(f"greeting: {greeting!r}")
        return conn

    async def line(self) -> str:
        raw = await self.reader.readline()
        if not raw.endswith(CRLF):
            raise ProtocolError(f"connection closed or bad line end: {raw[:80]!r}")
        return raw[:-2].decode("utf-8", "replace")

    async def cmd(self, text: str) -> str:
        self.writer.write(text.encode() + CRLF)
        return await self.line()

    async def block(self) -> list[bytes]:
        """The lines of a multi-line block, unstuffed, without the final '.'."""
        buf = bytearray()
        while not (buf == b".\r\n" or buf.endswith(b"\r\n.\r\n")):
            data = await self.reader.read(1 << 18)
            if not data:
                raise ProtocolError("connection closed inside a block")
            buf += data
        lines = bytes(buf[:-3]).split(CRLF)[:-1]
        return [ln[1:] if ln[:1] == b"." else ln for ln in lines]

    async def close(self) -> None:
        try:
            self.writer.write(b"QUIT\r\n")
            await self.writer.drain()
            await asyncio.wait_for(self.reader.read(), 5)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (OSError, ConnectionError):
            pass


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

    def rate(self) -> float:
        count = self.lines if self.unit == "lines/s" else self.ops
        return count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "ops": self.ops, "errors": self.errors, "seconds": round(self.seconds, 4),
            "rate": round(self.rate(), 1), "unit": self.unit, "lines": self.lines,
            "p50_ms": round(self.pct(0.50), 3), "p99_ms": round(self.pct(0.99), 3),
            "max_ms": round(max(self.latencies, default=0) * 1000, 3),
        }


class Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, phase: Phase, text: str) -> None:
        phase.errors += 1
        self.items.append(f"{phase.name}: {text}")


# -- the phases ---------------------------------------------------------------


async def phase_post(port: int, posts: list[Post], conns: int, errors: Errors) -> Phase:
    phase = Phase("POST")
    pending = iter(posts)
    wires = {p.index: p.wire() for p in posts}
    accepted: list[Post] = []

    async def worker() -> None:
        conn = await Conn.open(port)
        try:
            for post in pending:
                t0 = time.perf_counter()
                status = await conn.cmd("POST")
                if not status.startswith("340"):
                    errors.add(phase, f"{post.message_id}: POST answered {status!r}")
                    continue
                conn.writer.write(wires[post.index])
                final = await conn.line()
                phase.latencies.append(time.perf_counter() - t0)
                phase.ops += 1
                if not final.startswith("240"):
                    errors.add(phase, f"{post.message_id}: {final!r}")
                elif post.message_id not in final.split():
                    errors.add(phase, f"{post.message_id}: 240 names another id: {final!r}")
                else:
                    accepted.append(post)
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    phase.seconds = time.perf_counter() - t0
    phase.unit = "articles/s"
    accepted.sort(key=lambda p: p.index)
    phase.accepted = accepted  # type: ignore[attr-defined]
    return phase


def parse_overview(line: bytes) -> list[str]:
    return line.decode("utf-8", "replace").split("\t")


def check_overview_line(fields: list[str], number: int, post: Post) -> str | None:
    """None if an OVER line (already split) is right for ``post`` at ``number``."""
    if len(fields) < 9:
        return f"{number}: {len(fields)} fields"
    want = {
        "number": str(number), "subject": post.subject, "from": post.from_,
        "message-id": post.message_id, "references": post.references, "lines": str(post.lines),
        "xref": f"Xref: {PATH_HOST} {GROUP}:{number}",
    }
    got = {
        "number": fields[0], "subject": fields[1], "from": fields[2], "message-id": fields[4],
        "references": fields[5], "lines": fields[7], "xref": fields[8],
    }
    for key, value in want.items():
        if got[key] != value:
            return f"{number}: {key} {got[key]!r} != {value!r}"
    if not fields[6].isdigit() or int(fields[6]) <= len(post.body):
        return f"{number}: :bytes {fields[6]!r} not more than the body's {len(post.body)}"
    return None


async def select_group(conn: Conn, count: int, phase: Phase, errors: Errors) -> bool:
    status = await conn.cmd(f"GROUP {GROUP}")
    want = f"211 {count} 1 {count} {GROUP}"
    if status != want:
        errors.add(phase, f"GROUP answered {status!r}, expected {want!r}")
        return False
    return True


async def phase_over_all(port: int, count: int, repeat: int, errors: Errors,
                         by_id: dict[str, Post]) -> tuple[Phase, dict[int, Post]]:
    """OVER 1- of the whole group; the first answer also gives the number -> article map."""
    phase = Phase("OVER whole group", unit="lines/s")
    numbers: dict[int, Post] = {}
    conn = await Conn.open(port)
    try:
        if not await select_group(conn, count, phase, errors):
            return phase, numbers
        for run in range(repeat):
            t0 = time.perf_counter()
            status = await conn.cmd("OVER 1-")
            if not status.startswith("224"):
                errors.add(phase, f"OVER 1- answered {status!r}")
                continue
            lines = await conn.block()
            elapsed = time.perf_counter() - t0
            phase.latencies.append(elapsed)
            phase.seconds += elapsed
            phase.ops += 1
            phase.lines += len(lines)
            if len(lines) != count:
                errors.add(phase, f"OVER 1- gave {len(lines)} lines, expected {count}")
            for expected, raw in enumerate(lines, 1):
                fields = parse_overview(raw)
                if run == 0:
                    post = by_id.get(fields[4]) if len(fields) > 4 else None
                    if post is None:
                        errors.add(phase, f"line {expected}: unknown Message-ID {raw[:100]!r}")
                        continue
                    problem = check_overview_line(fields, expected, post)
                    if problem:
                        errors.add(phase, problem)
                        continue
                    numbers[expected] = post
                elif fields[0] != str(expected) or numbers.get(expected) is None \
                        or fields[4] != numbers[expected].message_id:
                    errors.add(phase, f"run {run}: line {expected} is {raw[:100]!r}")
    finally:
        await conn.close()
    return phase, numbers


async def run_requests(port: int, conns: int, count: int, count_group: int,
                       phase: Phase, make: Any, errors: Errors) -> None:
    """``count`` requests spread over ``conns`` connections; make(rng) -> coroutine fn(conn)."""
    todo = iter(range(count))

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        conn = await Conn.open(port)
        try:
            if not await select_group(conn, count_group, phase, errors):
                return
            for _ in todo:
                request = make(rng)
                t0 = time.perf_counter()
                problem = await request(conn)
                phase.latencies.append(time.perf_counter() - t0)
                phase.ops += 1
                if problem:
                    errors.add(phase, problem)
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(1000 + i) for i in range(conns)))
    phase.seconds = time.perf_counter() - t0


def over_window(numbers: dict[int, Post], width: int = 100) -> Any:
    count = len(numbers)

    def make(rng: random.Random) -> Any:
        low = rng.randint(1, max(1, count - width + 1))
        high = min(count, low + width - 1)

        async def request(conn: Conn) -> str | None:
            status = await conn.cmd(f"OVER {low}-{high}")
            if not status.startswith("224"):
                return f"OVER {low}-{high} answered {status!r}"
            lines = await conn.block()
            if len(lines) != high - low + 1:
                return f"OVER {low}-{high} gave {len(lines)} lines"
            for number, raw in zip(range(low, high + 1), lines):
                fields = parse_overview(raw)
                problem = check_overview_line(fields, number, numbers[number])
                if problem:
                    return f"OVER {low}-{high}: {problem}"
            return None

        return request

    return make


def split_article(lines: list[bytes]) -> tuple[list[bytes], bytes]:
    try:
        blank = lines.index(b"")
    except ValueError:
        return lines, b""
    return lines[:blank], b"".join(ln + CRLF for ln in lines[blank + 1:])


def check_article(status: str, lines: list[bytes], post: Post, number: int,
                  by_id: bool) -> str | None:
    words = status.split()
    numbers_ok = ("0", str(number)) if by_id else (str(number),)
    if len(words) < 3 or words[0] != "220" or words[1] not in numbers_ok or words[2] != post.message_id:
        return f"{post.message_id} (#{number}): status {status!r}"
    header, body = split_article(lines)
    if body != post.body:
        return f"{post.message_id} (#{number}): body differs ({len(body)} vs {len(post.body)} bytes)"
    wanted = {
        f"Message-ID: {post.message_id}".encode(),
        f"Xref: {PATH_HOST} {GROUP}:{number}".encode(),
        f"Subject: {post.subject}".encode(),
    }
    missing = wanted - set(header)
    if missing:
        return f"{post.message_id} (#{number}): header lacks {sorted(missing)[0]!r}"
    return None


def article_fetch(numbers: dict[int, Post], by_id: bool) -> Any:
    count = len(numbers)

    def make(rng: random.Random) -> Any:
        number = rng.randint(1, count)
        post = numbers[number]
        arg = post.message_id if by_id else str(number)

        async def request(conn: Conn) -> str | None:
            status = await conn.cmd(f"ARTICLE {arg}")
            if not status.startswith("220"):
                return f"ARTICLE {arg} answered {status!r}"
            lines = await conn.block()
            return check_article(status, lines, post, number, by_id)

        return request

    return make


async def phase_hdr(port: int, numbers: dict[int, Post], repeat: int, errors: Errors) -> Phase:
    phase = Phase("HDR Subject whole group", unit="lines/s")
    count = len(numbers)
    conn = await Conn.open(port)
    try:
        if not await select_group(conn, count, phase, errors):
            return phase
        for _ in range(repeat):
            t0 = time.perf_counter()
            status = await conn.cmd("HDR Subject 1-")
            if not status.startswith("225"):
                errors.add(phase, f"HDR Subject 1- answered {status!r}")
                continue
            lines = await conn.block()
            elapsed = time.perf_counter() - t0
            phase.latencies.append(elapsed)
            phase.seconds += elapsed
            phase.ops += 1
            phase.lines += len(lines)
            if len(lines) != count:
                errors.add(phase, f"HDR gave {len(lines)} lines, expected {count}")
            for number, raw in enumerate(lines, 1):
                want = f"{number} {numbers[number].subject}" if number in numbers else None
                if raw.decode("utf-8", "replace") != want:
                    errors.add(phase, f"HDR line {number}: {raw[:100]!r} != {want!r}")
                    break
    finally:
        await conn.close()
    return phase


# -- the server -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nntpd_command() -> list[str]:
    """The CLI of the checkout this file is in (REPO goes first on PYTHONPATH, see Server).

    Not the ``nntpd`` console script: with an editable install elsewhere it
    could run another copy of the code than the one being measured.
    """
    return [sys.executable, "-c", "from cli import main; main()"]


def code_version() -> str:
    """The commit of REPO, with +dirty for uncommitted changes; 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Server:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.db = workdir / "bench.sqlite3"
        self.url = f"sqlite+aiosqlite:///{self.db}"
        self.config = workdir / "bench.toml"
        self.config.write_text(
            f'[server]\nport = {port}\npath_host = "{PATH_HOST}"\n'
            f'[database]\nurl = "{self.url}"\n[logging]\nlevel = "WARNING"\n',
            encoding="utf-8",
        )
        self.log = workdir / "server.log"
        self.env = dict(os.environ)
        self.env.pop("NNTPD_CONFIG", None)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), self.env.get("PYTHONPATH")]))
        self.base = nntpd_command() + ["--config", str(self.config)]
        self.proc: subprocess.Popen[bytes] | None = None

    def init(self) -> None:
        result = subprocess.run(self.base + ["init"], cwd=self.workdir, env=self.env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"nntpd init failed:\n{result.stdout}{result.stderr}")

    async def start(self) -> None:
        log = open(self.log, "wb")
        self.proc = subprocess.Popen(self.base + ["serve", "--port", str(self.port)],
                                     cwd=self.workdir, env=self.env, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 30
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"nntpd serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = await Conn.open(self.port)
                await conn.close()
                return
            except (OSError, ProtocolError) as exc:
                last = exc
                await asyncio.sleep(0.1)
        self.stop()
        sys.exit(f"nntpd serve did not greet on port {self.port} ({last}):\n{self.log_tail()}")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- main ---------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def table(phases: list[Phase]) -> str:
    rows = [("phase", "ops", "errors", "seconds", "rate", "unit", "p50 ms", "p99 ms")]
    for p in phases:
        s = p.summary()
        rows.append((p.name, str(s["ops"]), str(s["errors"]), f"{s['seconds']:.2f}",
                     f"{s['rate']:,.0f}", s["unit"], f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


async def bench(args: argparse.Namespace) -> int:
    port = args.port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="nntpd-bench-"))
    server = Server(workdir, port)
    errors = Errors()
    phases: list[Phase] = []
    started = datetime.now(timezone.utc)
    version = code_version()
    try:
        server.init()
        await server.start()
        run_id = f"{int(time.time()):x}"
        posts = make_posts(args.articles, args.seed, run_id)
        by_id = {p.message_id: p for p in posts}
        body_bytes = sum(len(p.body) for p in posts)
        print(f"nntpd bench: code {version}, {args.articles} articles "
              f"({body_bytes / 1e6:.1f} MB of bodies), {args.connections} connections, "
              f"port {port}, database {server.db}", flush=True)

        post = await phase_post(port, posts, args.connections, errors)
        phases.append(post)
        count = len(post.accepted)  # type: ignore[attr-defined]

        over_all, numbers = await phase_over_all(port, count, args.repeat, errors, by_id)
        phases.append(over_all)
        if len(numbers) != count or count == 0:
            errors.add(over_all, "cannot map article numbers to Message-IDs; skipping the rest")
        else:
            window = Phase("OVER 100-article window")
            await run_requests(port, args.connections, args.windows, count, window,
                               over_window(numbers), errors)
            phases.append(window)
            for by_msgid in (False, True):
                fetch = Phase("ARTICLE by Message-ID" if by_msgid else "ARTICLE by number")
                await run_requests(port, args.connections, args.fetches, count, fetch,
                                   article_fetch(numbers, by_msgid), errors)
                phases.append(fetch)
            phases.append(await phase_hdr(port, numbers, args.repeat, errors))
    finally:
        code = server.stop()
        db_size = sum(f.stat().st_size for f in workdir.glob("bench.sqlite3*")) if workdir.exists() else 0
        log_tail = server.log_tail()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(table(phases))
    print()
    print(f"database {db_size / 1e6:.1f} MB; server exit status {code}; "
          f"{len(errors.items)} error(s)")
    for item in errors.items[:MAX_ERRORS_SHOWN]:
        print(f"  ERROR {item}")
    if len(errors.items) > MAX_ERRORS_SHOWN:
        print(f"  ... and {len(errors.items) - MAX_ERRORS_SHOWN} more")
    if errors.items and log_tail:
        print("server log (tail):\n" + log_tail)

    if args.json:
        result = {
            "started": started.isoformat(timespec="seconds"),
            "code": version,
            "parameters": {"articles": args.articles, "connections": args.connections,
                           "windows": args.windows, "fetches": args.fetches,
                           "repeat": args.repeat, "seed": args.seed},
            "machine": machine(),
            "database_bytes": db_size,
            "phases": {p.name: p.summary() for p in phases},
            "errors": errors.items,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 1 if errors.items else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=5000, help="articles to post (default 5000)")
    parser.add_argument("--connections", type=int, default=8, help="client connections (default 8)")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--windows", type=int, default=1000,
                        help="OVER 100-article window requests (default 1000)")
    parser.add_argument("--fetches", type=int, default=2000,
                        help="ARTICLE requests of each kind (default 2000)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of the whole-group OVER and HDR (default 5)")
    parser.add_argument("--seed", type=int, default=3977, help="random seed (default 3977)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.articles < 1 or args.connections < 1:
        parser.error("--articles and --connections must be at least 1")
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
