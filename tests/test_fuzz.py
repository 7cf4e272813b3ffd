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
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from conftest import free_port
from fuzz_client import (
    PASSWORD,
    RESPONSE_TIMEOUT,
    Closed,
    Conn,
    Failure,
    Failures,
    Seg,
    Stats,
    segments,
    shape,
)
from fuzz_lines import GROUPS, LONG_GROUP, MAX_ARTICLE, PATH_HOST, SEED, Generator
from nntpd.article import prepare_article
from nntpd.commands import load_all
from nntpd.config import load_settings
from nntpd.passwords import hash_password
from storage import Poster, Store

ROOT = Path(__file__).resolve().parent.parent
LINES = int(os.environ.get("NNTPD_FUZZ_LINES", "20000"))
CONNECTIONS = ("anon", "anon", "anon", "member", "staff", "anon")  # one persona per connection
PROBE_TIMEOUT = 2.0  # a fresh connection's greeting and DATE: is the whole server stuck?
GIVE_UP_AFTER = 300.0  # seconds: a server that hangs everywhere ends the run early (a failure)


# -- the database and the server ---------------------------------------------------------

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
