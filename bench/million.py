"""The ``--million`` phase: our server on a group of 1,000,000 articles.

The database is filled in-process through the store (``load_million.py``,
run as a subprocess), not over NNTP. Then ``nntpd serve`` runs on it and,
for each client kind:

- GROUP latency and OVER 100-article window latency (one connection, p50/p99);
- OVER 1- of the whole group, every line checked, while the server's VmRSS
  is sampled every 50 ms: the growth over the value before the request;
- POST of 2,000 articles over 8 connections, compared with the same on a
  fresh, empty database, the two taking turns.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from load_million import GROUP, copy_post, read_map, template_posts
from procfs import tree_rss_kb as vm_rss_kb
from servers import REPO, OurServer, free_port
from workload import (
    PATH_HOST,
    Errors,
    Phase,
    Post,
    Target,
    WorkloadSettings,
    check_overview_line,
    group_request,
    measured,
    make_posts,
    over_window,
    phase_post,
    run_requests,
    select_group,
)


class MillionNumbers(Mapping[int, Post]):
    """Article number -> the article the loader stored under it (built on demand)."""

    def __init__(self, templates: list[Post], tmpl: Any, copy: Any, count: int) -> None:
        self.templates = templates
        self.tmpl = tmpl
        self.copy = copy
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, number: int) -> Post:
        if not 1 <= number <= self.count:
            raise KeyError(number)
        return copy_post(self.templates[self.tmpl[number]], self.copy[number])

    def __iter__(self) -> Iterator[int]:
        return iter(range(1, self.count + 1))


def run_loader(server: OurServer, count: int, seed: int, map_path: Path, in_flight: int,
               log: Callable[[str], None]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).with_name("load_million.py")), "--db", str(server.db),
               "--count", str(count), "--map", str(map_path), "--seed", str(seed),
               "--in-flight", str(in_flight)]
    log(f"  loading {count:,} articles: {' '.join(command[1:])}")
    proc = subprocess.Popen(command, env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=REPO)
    result: dict[str, Any] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
        else:
            log("  " + line.rstrip())
    if proc.wait() != 0:
        raise RuntimeError(f"load_million.py failed with status {proc.returncode}")
    return result


async def over_whole_sampled(target: Target, numbers: Mapping[int, Post], pid: int,
                             errors: Errors) -> Phase:
    """OVER 1- of the whole group, every line checked, server VmRSS sampled every 50 ms."""
    count = len(numbers)
    phase = Phase("OVER 1- (large group)", unit="lines/s")
    conn = await target.connect()
    samples: list[int] = []
    running = True

    async def sampler() -> None:
        while running:
            rss = vm_rss_kb(pid)
            if rss is not None:
                samples.append(rss)
            await asyncio.sleep(0.05)

    try:
        if not await select_group(conn, target, count, phase, errors):
            return phase
        base = vm_rss_kb(pid) or 0
        task = asyncio.create_task(sampler())
        t0 = time.perf_counter()
        status = await conn.cmd("OVER 1-")
        if not status.startswith("224"):
            errors.add(phase, f"OVER 1- answered {status!r}", target.where)
            running = False
            await task
            return phase
        expected = 1
        failed = 0
        async for lines in conn.block_lines():
            for raw in lines:
                if expected > count:
                    problem = f"extra line {raw[:80]!r}"
                else:
                    problem = check_overview_line(raw.split(b"\t"), expected, numbers[expected], target)
                if problem:
                    failed += 1
                    if failed <= 10:
                        errors.add(phase, problem, target.where)
                expected += 1
        elapsed = time.perf_counter() - t0
        running = False
        await task
        after = vm_rss_kb(pid) or 0
        phase.seconds = elapsed
        phase.latencies.append(elapsed)
        phase.ops = 1
        phase.lines = expected - 1
        if expected - 1 != count:
            errors.add(phase, f"OVER 1- gave {expected - 1} lines, expected {count}", target.where)
        peak = max(samples, default=base)
        phase.extra.update({
            "rss_before_kb": base, "rss_peak_kb": peak, "rss_after_kb": after,
            "rss_growth_mb": round((peak - base) / 1024, 1), "rss_samples": len(samples),
        })
    finally:
        running = False
        await conn.close()
    return phase


async def run_million(args: Any, workdir: Path, cfg: WorkloadSettings, modes: list[bool],
                      log: Callable[[str], None], code: Path = REPO) -> dict[str, Any]:
    """The whole phase; returns figures, phases and errors for the report."""
    errors = Errors()
    out: dict[str, Any] = {"errors": errors, "phases": {}, "load": {}}
    reuse = Path(args.million_db) if args.million_db else None
    port = free_port()
    server = OurServer(workdir / "million", port, db=reuse, code=code, workers=args.workers)
    map_path = (reuse.parent if reuse else server.workdir) / "numbers.map"
    if reuse is None or not reuse.exists():
        server.init()
        t0 = time.perf_counter()
        result = run_loader(server, args.million_articles, args.seed, map_path, args.million_in_flight, log)
        out["load"] = dict(result, wall_seconds=round(time.perf_counter() - t0, 1))
    else:
        log(f"  reusing {reuse} (numbers from {map_path})")
    meta, tmpl, copy = read_map(map_path)
    out["load"].setdefault("count", meta["count"])
    out["load"]["database_bytes"] = server.db_bytes()
    templates = template_posts(meta["templates"], meta["seed"], meta["run_id"])
    numbers = MillionNumbers(templates, tmpl, copy, meta["count"])
    gc.collect()
    gc.freeze()  # as in workload.run_workload: no full collections of the setup in the phases
    count = meta["count"]

    def record(mode: bool, phase: Phase) -> None:
        out["phases"].setdefault(phase.name, {})["quick-ACK" if mode else "ordinary"] = phase

    await server.start()
    try:
        for quickack in modes:
            target = Target("ours", port, GROUP, quickack, PATH_HOST, pid=server.pid)

            async def step(name: str, coro: Any) -> Phase:
                return await measured(target, name, coro, errors, cfg.timeout, log)

            group_count = await current_count(target)

            async def requests(name: str, n: int, make: Any) -> Phase:
                phase = Phase(name)
                # The connection's GROUP must show the group as it is (a reused database
                # holds the earlier runs' posts too); the requests stay in the loaded range.
                await run_requests(target, 1, n, group_count, phase, make, errors,
                                   min_seconds=cfg.min_seconds)
                return phase

            if group_count != count:
                log(f"  the group holds {group_count:,} articles, the map {count:,}: "
                    "a reused database with later posts; reads use the loaded range")
            record(quickack, await step("GROUP (large group)", requests(
                "GROUP (large group)", cfg.latency_requests, group_request(target, group_count))))
            window = over_window(numbers, target)
            record(quickack, await step("OVER 100-article window, 1 conn (large group)", requests(
                "OVER 100-article window, 1 conn (large group)", cfg.windows, window)))
            if group_count == count:
                record(quickack, await step("OVER 1- (large group)", over_whole_sampled(
                    target, numbers, server.pid or 0, errors)))
        # POST into the large group and into an empty database in turns (the empty one
        # first for the second client kind), seconds apart: the machine's speed moves
        # by up to 25% within minutes, and this target is a ratio of the two.
        empty = OurServer(workdir / "million-empty", free_port(), code=code, workers=args.workers)
        empty.init()
        await empty.start()
        try:
            for n, quickack in enumerate(modes):
                sides = [(server, "m", f"POST (large group, {count:,} stored)", "POST (large group)"),
                         (empty, "e", "POST (empty database)", "POST (empty)")]
                for side, tag, title, name in (sides if n % 2 == 0 else sides[::-1]):
                    target = Target("ours", side.port, GROUP, quickack, PATH_HOST, pid=side.pid)
                    posts = make_posts(args.million_posts, args.seed + 1,
                                       f"{int(time.time()):x}{tag}{'q' if quickack else 'o'}")
                    record(quickack, await measured(target, title, phase_post(
                        target, posts, cfg.connections, errors, name=name), errors, cfg.timeout, log))
        finally:
            empty.stop()
        out["server_alive"] = server.alive()
    finally:
        status = server.stop()
        out["exit_status"] = status
        if errors.items:
            out["log_tail"] = server.log_tail()
    return out


async def current_count(target: Target) -> int:
    conn = await target.connect()
    try:
        status = await conn.cmd(f"GROUP {target.group}")
        words = status.split()
        return int(words[1]) if words and words[0] == "211" else -1
    finally:
        await conn.close()
