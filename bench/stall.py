"""No command holds the event loop: DATE latency on one connection while another scans.

    .venv/bin/python bench/stall.py                       # 20,000 articles, 1,000 groups (~1 min)
    .venv/bin/python bench/stall.py --articles 100000 --seconds 5 --kinds xpat,over

Issue 13 asks that scans over many items (XPAT, HDR, OVER, LISTGROUP,
NEWNEWS, LIST over many groups) yield to the event loop in bounded chunks,
so that one client's worst case never stalls the others: a client that
sends DATE in a loop meanwhile must see a p99 under 50 ms.

For each kind of scan this runs ``nntpd serve`` (one process, as the issue
is about one event loop) on a temporary SQLite database filled through the
project's own store (``prepare_article`` and ``Store.post``, as
``load_million.py`` does): one group of ``--articles`` articles whose
Subject and ``X-Stall-Note`` are long runs of ``a`` (the text that makes a
backtracking wildmat exponential), and ``--groups`` groups with long names
made of ``a``. One connection repeats the scan and reads every answer to
its end; another sends DATE, one at a time, and times each round trip. It
goes on for ``--seconds`` and at least until one scan has finished; the
scan that is running then is read to its end (DATE still measured), so
every figure is taken while a scan runs (the time is extended until
``--min-samples`` DATEs have been answered). A DATE without an answer in
``--date-timeout`` seconds is a hang: the server is killed and started
again for the next kind (SIGTERM may not reach a blocked loop).

The client runs in this process, the server in another: a blocked server
loop shows as DATE latency and nothing else. The scan's answer is read by
the benchmark's cheap Protocol client (bench/nntp_client.py), so reading
a large answer adds little to the DATE connection's figures.

tests/test_stall.py runs the same functions on a smaller database.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nntp_client import Conn, ProtocolError
from servers import REPO, OurServer, code_version, free_port, snapshot_code
from workload import PATH_HOST

GROUP = "stall.scan"
P99_LIMIT = 0.050  # seconds: the bound for DATE while a scan runs
XPAT_PATTERN = "*a*a*a*a*a*a*a*a*a*a*a*a*b"  # issue 13, point 1: 12 stars, never matches
LIST_PATTERN = "*a*a*a*a*a*a*a*a*a*a*b"
SINCE = "19700101 000000 GMT"  # NEWNEWS over everything
FOLD_AT = 900  # header lines stay under RFC 5322's 998 octets: long values are folded


@dataclass(frozen=True)
class Scan:
    """One worst case: a command, the status of its (multi-line) answer, and the group it needs."""

    name: str
    command: str
    code: str
    group: str | None = None  # selected first with GROUP


def scans() -> list[Scan]:
    """The worst cases the issue names, in the order they run."""
    return [
        Scan("xpat", f"XPAT Subject 1- {XPAT_PATTERN}", "221", GROUP),
        Scan("hdr", "HDR X-Stall-Note 1-", "225", GROUP),  # not an overview field: header blocks
        Scan("over", "OVER 1-", "224", GROUP),
        Scan("listgroup", f"LISTGROUP {GROUP}", "211"),
        Scan("newnews", f"NEWNEWS * {SINCE}", "230"),
        Scan("list_active", f"LIST ACTIVE {LIST_PATTERN}", "215"),
    ]


# -- the database -------------------------------------------------------------------


def long_value(length: int, tail: str) -> str:
    """``length`` a's in words of 50, then ``tail``, folded so that no line is too long.

    Words keep a folded value unfoldable anywhere; the text stays all a's for the
    wildmat, whatever a matcher makes of the spaces.
    """
    words = ["a" * 50] * (length // 50) + (["a" * (length % 50)] if length % 50 else [])
    lines, current = [], ""
    for word in words + [tail]:
        if current and len(current) + 1 + len(word) > FOLD_AT:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return "\r\n ".join(lines)


def make_article(i: int, run: str, subject_length: int, group: str = GROUP) -> bytes:
    """Article ``i``: Subject and X-Stall-Note of ``subject_length`` a's, a one-line body."""
    return (
        f"From: Stall Bench <stall@example.com>\r\n"
        f"Newsgroups: {group}\r\n"
        f"Subject: {long_value(subject_length, str(i))}\r\n"
        f"Message-ID: <stall{i}.{run}@{PATH_HOST}>\r\n"
        f"X-Stall-Note: {long_value(subject_length, f'note {i}')}\r\n"
        f"\r\n"
        f"Body of article {i}.\r\n"
    ).encode()


def group_name(i: int, length: int) -> str:
    """A long, valid group name made of a's (RFC 5536 3.1.4), unique by ``i``."""
    return f"stall.list.{'a' * length}.g{i:05d}"


async def populate(url: str, *, articles: int, groups: int, subject_length: int = 100,
                   group_length: int = 120, in_flight: int = 256) -> None:
    """Create the schema, GROUP with ``articles`` articles and ``groups`` long-named groups.

    Posts go through ``prepare_article`` and ``Store.post`` as a POST does, many at a
    time so the writer commits them in batches (as load_million.py does). Any refusal
    is an error: a scan over fewer articles than asked would flatter the figures.
    """
    from datetime import datetime, timezone

    from nntpd.article import prepare_article
    from storage import Poster, Store

    store = Store(url, path_host=PATH_HOST)
    try:
        await store.init_schema()
        if await store.group(GROUP) is None:
            await store.create_group(GROUP, description="stall benchmark", creator="stall")
        existing = {g.name for g in await store.groups()}
        for i in range(groups):
            name = group_name(i, group_length)
            if name not in existing:
                await store.create_group(name, description=f"long name {i}", creator="stall")
        run = f"{time.time_ns():x}"
        todo = iter(range(articles))
        poster = Poster(author_key="stall@example.com")

        async def worker() -> None:
            for i in todo:
                raw = make_article(i, run, subject_length)
                article = prepare_article(raw, path_host=PATH_HOST, now=datetime.now(timezone.utc))
                await store.post(article, poster)

        await asyncio.gather(*(worker() for _ in range(in_flight)))
        group = await store.group(GROUP)
        if group is None or group.count < articles:
            raise RuntimeError(f"{GROUP} holds {group.count if group else 0} articles, not {articles}")
    finally:
        await store.close()


# -- the measurement ----------------------------------------------------------------


@dataclass
class Result:
    """DATE round trips (seconds) measured while one kind of scan ran."""

    scan: Scan
    samples: list[float] = field(default_factory=list)
    scan_seconds: list[float] = field(default_factory=list)  # each complete scan
    error: str = ""
    hung: bool = False  # a DATE got no answer in time: the server's loop was blocked
    cut: bool = False  # stopped at max_seconds, before min_samples, with a scan under way

    @property
    def scans(self) -> int:
        return len(self.scan_seconds)

    def quantile(self, q: float) -> float:
        """The q-quantile of the samples (nearest rank), inf without samples."""
        if not self.samples:
            return float("inf")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    @property
    def p50(self) -> float:
        return self.quantile(0.50)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    @property
    def worst(self) -> float:
        return max(self.samples, default=float("inf"))

    @property
    def clean(self) -> bool:
        """Measured as intended: no hang, no wrong answer, at least one whole scan."""
        return not self.hung and not self.error and self.scans > 0

    @property
    def ok(self) -> bool:
        return self.clean and self.p99 < P99_LIMIT

    def __repr__(self) -> str:
        return f"Result({self.summary()})"

    def summary(self) -> str:
        """One line with the figures, for reports and assertion messages."""
        ms = lambda s: "inf" if s == float("inf") else f"{s * 1000:.2f}"  # noqa: E731
        text = (f"{self.scan.name}: {self.scan.command!r}: DATE n={len(self.samples)} "
                f"p50={ms(self.p50)} ms p99={ms(self.p99)} ms max={ms(self.worst)} ms, "
                f"{self.scans} scans")
        if self.scan_seconds:
            text += f" of {statistics.mean(self.scan_seconds) * 1000:.0f} ms"
        if self.cut:
            text += ", cut short at --max-seconds"
        if self.hung:
            text += ", HUNG (a DATE got no answer)"
        if self.error:
            text += f", ERROR: {self.error}"
        return text


async def _scan_loop(conn: Conn, scan: Scan, stop: asyncio.Event, started: asyncio.Event,
                     result: Result) -> None:
    """Repeat the scan, reading each answer to its end, until ``stop`` (after a whole answer)."""
    while not stop.is_set():
        t0 = time.perf_counter()
        started.set()  # the request below is written before this task next yields
        status, _ = await conn.request(scan.command, scan.code.encode())
        if not status.startswith(scan.code + " "):
            result.error = f"answered {status[:200]!r}"
            return
        result.scan_seconds.append(time.perf_counter() - t0)


async def _ping_loop(conn: Conn, scanner: asyncio.Task[None], stop: asyncio.Event, result: Result,
                     seconds: float, date_timeout: float, max_seconds: float, min_samples: int) -> None:
    """DATE, one at a time, until the scanner has stopped; each round trip is a sample.

    The scanner is told to stop after ``seconds``, one whole scan and ``min_samples``
    samples (a p99 of a few dozen samples is only their maximum)."""
    t_start = time.perf_counter()
    while not scanner.done():
        elapsed = time.perf_counter() - t_start
        if elapsed >= seconds and result.scans > 0 and len(result.samples) >= min_samples:
            stop.set()  # the scanner finishes the answer it is reading, then stops
        if elapsed >= max_seconds:  # the scan still running is dropped (the server restarted)
            result.cut = True
            if not result.scans:
                result.error = result.error or f"no whole scan within {max_seconds:g} s"
            return
        t0 = time.perf_counter()
        try:
            status = await asyncio.wait_for(conn.cmd("DATE"), date_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            result.samples.append(time.perf_counter() - t0)
            result.hung = True
            return
        result.samples.append(time.perf_counter() - t0)
        if not status.startswith("111 "):
            result.error = f"DATE answered {status[:200]!r}"
            return


async def _open(port: int, timeout: float) -> Conn:
    return await asyncio.wait_for(Conn.open(port), timeout)


async def measure(port: int, scan: Scan, *, seconds: float = 2.0, date_timeout: float = 5.0,
                  max_seconds: float = 30.0, min_samples: int = 200) -> Result:
    """DATE latency on one connection while ``scan`` repeats on another (see the module doc)."""
    result = Result(scan)
    pinger = scanner = None
    task: asyncio.Task[None] | None = None
    try:
        pinger = await _open(port, date_timeout)
        scanner = await _open(port, date_timeout)
        if scan.group:
            status = await asyncio.wait_for(scanner.cmd(f"GROUP {scan.group}"), date_timeout)
            if not status.startswith("211 "):
                result.error = f"GROUP {scan.group} answered {status[:200]!r}"
                return result
        for _ in range(20):  # warm up both ends of the DATE connection, not measured
            await asyncio.wait_for(pinger.cmd("DATE"), date_timeout)
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(_scan_loop(scanner, scan, stop, started, result))
        await started.wait()
        await _ping_loop(pinger, task, stop, result, seconds, date_timeout, max_seconds, min_samples)
        if task.done() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    except (TimeoutError, asyncio.TimeoutError):
        result.hung = True
        result.error = result.error or "no answer while setting up"
    except (OSError, ProtocolError) as exc:
        result.error = result.error or f"{exc.__class__.__name__}: {exc}"
    finally:
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for conn in (pinger, scanner):
            if conn is not None:
                conn.abort()
    return result


def kill(server: OurServer) -> None:
    """SIGKILL: a server whose loop is blocked does not act on SIGTERM."""
    if server.proc is not None and server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()


def stop(server: OurServer, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds (OurServer.stop waits 30)."""
    if server.proc is not None and server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    kill(server)


async def run_scans(server: OurServer, kinds: list[Scan], *, seconds: float, date_timeout: float,
                    max_seconds: float, min_samples: int,
                    log=print) -> list[Result]:  # type: ignore[no-untyped-def]
    """Measure each kind on ``server`` (started here if it is not running); stops it at the end.

    After a kind that did not end cleanly (or was cut short) the server may still be
    busy with (or stuck in) the scan, which would spoil the next figure: it is killed
    and started again.
    """
    results = []
    try:
        for scan in kinds:
            if not server.alive():
                await server.start()
            result = await measure(server.port, scan, seconds=seconds, date_timeout=date_timeout,
                                   max_seconds=max_seconds, min_samples=min_samples)
            log(f"  {result.summary()}")
            results.append(result)
            if not result.clean or result.cut:
                kill(server)
    finally:
        stop(server)
    return results


async def stall_run(workdir: Path, *, articles: int, groups: int, subject_length: int,
                    group_length: int, seconds: float, date_timeout: float, max_seconds: float,
                    min_samples: int = 200, code: Path = REPO, kinds: list[Scan] | None = None,
                    log=print) -> list[Result]:  # type: ignore[no-untyped-def]
    """Fill a fresh database in ``workdir``, then measure every kind against ``nntpd serve``."""
    server = OurServer(workdir, free_port(), code=code, workers=1)
    t0 = time.perf_counter()
    await populate(server.url, articles=articles, groups=groups, subject_length=subject_length,
                   group_length=group_length)
    log(f"  filled {server.db.name}: {articles:,} articles in {GROUP}, {groups} groups "
        f"in {time.perf_counter() - t0:.1f} s")
    return await run_scans(server, kinds or scans(), seconds=seconds, date_timeout=date_timeout,
                           max_seconds=max_seconds, min_samples=min_samples, log=log)


# -- the command ----------------------------------------------------------------------


def report(results: list[Result]) -> str:
    """The table main() prints: DATE latency per kind of scan."""
    rows = [f"{'scan':<12} {'scans':>5} {'scan ms':>8} {'DATE n':>7} {'p50 ms':>7} {'p99 ms':>8} "
            f"{'max ms':>8}  verdict"]
    for r in results:
        scan_ms = f"{statistics.mean(r.scan_seconds) * 1000:.0f}" if r.scan_seconds else "-"
        if r.hung:
            verdict = "FAIL: hung (a DATE got no answer)"
        elif r.error:
            verdict = f"FAIL: {r.error}"
        elif r.ok:
            verdict = f"ok (p99 < {P99_LIMIT * 1000:.0f} ms)"
        else:
            verdict = f"FAIL (p99 >= {P99_LIMIT * 1000:.0f} ms)"
        fmt = lambda s: "inf" if s == float("inf") else f"{s * 1000:.2f}"  # noqa: E731
        rows.append(f"{r.scan.name:<12} {r.scans:>5} {scan_ms:>8} {len(r.samples):>7} "
                    f"{fmt(r.p50):>7} {fmt(r.p99):>8} {fmt(r.worst):>8}  {verdict}")
    rows.append("")
    rows += [f"{r.scan.name:<12} {r.scan.command}" for r in results]
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--articles", type=int, default=20000, help="articles in the scanned group")
    parser.add_argument("--groups", type=int, default=1000, help="long-named groups for LIST ACTIVE")
    parser.add_argument("--subject-length", type=int, default=1000,
                        help="a's in each Subject and X-Stall-Note")
    parser.add_argument("--group-length", type=int, default=300, help="a's in each long group name")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per kind of scan")
    parser.add_argument("--min-samples", type=int, default=500,
                        help="DATE samples per kind at least (the time is extended up to --max-seconds)")
    parser.add_argument("--date-timeout", type=float, default=5.0,
                        help="a DATE unanswered this long is a hang")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="stop a kind after this long, whole scan or enough samples or not")
    parser.add_argument("--kinds", default=",".join(s.name for s in scans()),
                        help="comma-separated kinds of scan to run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--no-snapshot", action="store_true",
                        help="run the checkout's code itself instead of a copy taken at the start")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    by_name = {s.name: s for s in scans()}
    unknown = [k for k in args.kinds.split(",") if k not in by_name]
    if unknown:
        sys.exit(f"unknown kind(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
    kinds = [by_name[k] for k in args.kinds.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="nntpd-stall-"))
    code = REPO if args.no_snapshot else snapshot_code(workdir / "code")
    sys.path.insert(0, str(code))  # populate() imports the same code as the server runs
    print(f"stall: code {code_version()}{'' if args.no_snapshot else ' (snapshot)'}; "
          f"{args.articles:,} articles of {args.subject_length} a's, {args.groups} groups of "
          f"{args.group_length} a's; {args.seconds:g} s per kind; workdir {workdir}", flush=True)
    try:
        results = asyncio.run(stall_run(
            workdir / "run", articles=args.articles, groups=args.groups,
            subject_length=args.subject_length, group_length=args.group_length,
            seconds=args.seconds, date_timeout=args.date_timeout, max_seconds=args.max_seconds,
            min_samples=args.min_samples, code=code, kinds=kinds, log=lambda text: print(text, flush=True)))
    finally:
        if not args.keep:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(report(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
