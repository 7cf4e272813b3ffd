"""Idle connections: what each costs the server in memory.

Each connection is opened as a newsreader opens one (greeting, MODE
READER) and then left idle. Ours: VmRSS of the server process before and
after 1,000 and then 10,000 connections. INN: every reader connection is
its own nnrpd process, so 1,000 connections are 1,000 processes; their RSS
and PSS are summed from /proc/PID/smaps_rollup (RSS counts the pages they
share once per process, PSS divides them among the sharers). 10,000 nnrpd
processes would need some 20 GB, so INN is measured at 1,000 only.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable
from typing import Any

from nntp_client import Conn, ProtocolError
from procfs import pids_named, tree_rss_kb, vm_rss_kb
from servers import nnrpd_memory
from workload import Errors, Phase, Target, group_request, run_requests


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE (soft, and hard if allowed) toward ``wanted``; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    if hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def open_many(target: Target, n: int, concurrency: int, conns: list[Conn],
                    failures: list[str]) -> None:
    todo = iter(range(n))

    async def opener() -> None:
        for _ in todo:
            try:
                conns.append(await Conn.open(target.port, quickack=target.quickack))
            except (OSError, ProtocolError, asyncio.IncompleteReadError) as exc:
                failures.append(f"{exc.__class__.__name__}: {exc}")

    await asyncio.gather(*(opener() for _ in range(concurrency)))


async def still_open(conns: list[Conn], sample: int = 100) -> int:
    """How many of a sample of the idle connections still answer DATE with 111."""
    step = max(1, len(conns) // sample)
    ok = 0
    for conn in conns[::step][:sample]:
        try:
            status = await asyncio.wait_for(conn.cmd("DATE"), 10)
            ok += status.startswith("111")
        except (OSError, ProtocolError, asyncio.TimeoutError, ConnectionError):
            pass
    return ok


def close_all(conns: list[Conn]) -> None:
    for conn in conns:
        conn.abort()
    conns.clear()


async def idle_ours(target: Target, pid: int, steps: list[int], count: int, errors: Errors,
                    log: Callable[[str], None], latency_requests: int = 200) -> dict[str, Any]:
    """Open idle connections up to each total in ``steps``; RSS per connection at each."""
    phase = Phase("idle connections")
    out: dict[str, Any] = {"steps": []}
    conns: list[Conn] = []
    await asyncio.sleep(1)
    base = tree_rss_kb(pid) or 0
    out["rss_before_kb"] = base
    try:
        for total in steps:
            failures: list[str] = []
            t0 = time.perf_counter()
            await open_many(target, total - len(conns), 100, conns, failures)
            opened_in = time.perf_counter() - t0
            await asyncio.sleep(2)
            rss = tree_rss_kb(pid) or 0
            alive = await still_open(conns)
            # responsiveness with that many idle connections: GROUP on a fresh connection
            group = Phase(f"GROUP with {len(conns):,} idle")
            await run_requests(target, 1, latency_requests, count, group,
                               group_request(target, count), errors)
            step = {
                "connections": len(conns), "failed": len(failures), "open_seconds": round(opened_in, 2),
                "rss_kb": rss, "kb_per_connection": round((rss - base) / max(1, len(conns)), 2),
                "sample_alive": alive, "group_p50_ms": round(group.pct(0.5), 3),
                "group_p99_ms": round(group.pct(0.99), 3),
            }
            out["steps"].append(step)
            log(f"  ours    {len(conns):,} idle: RSS {base:,} -> {rss:,} KB, "
                f"{step['kb_per_connection']:.1f} KB each; {alive}/100 sampled answer DATE; "
                f"GROUP p50 {step['group_p50_ms']:.2f} ms")
            if failures:
                errors.add(phase, f"{len(failures)} of {total:,} connections failed, first: {failures[0]}",
                           target.where)
            if alive < min(100, len(conns)):
                errors.add(phase, f"only {alive} of a sample of idle connections still answer",
                           target.where)
    finally:
        close_all(conns)
    await asyncio.sleep(2)
    out["rss_after_close_kb"] = tree_rss_kb(pid)
    return out


async def idle_inn(target: Target, n: int, innd_pid: int | None, errors: Errors,
                   log: Callable[[str], None]) -> dict[str, Any]:
    phase = Phase("idle connections")
    out: dict[str, Any] = {}
    # earlier phases' nnrpd processes exit when their client closes; wait for that
    for _ in range(50):
        if not pids_named("nnrpd"):
            break
        await asyncio.sleep(0.2)
    before = set(pids_named("nnrpd"))
    innd_before = vm_rss_kb(innd_pid) if innd_pid else None
    conns: list[Conn] = []
    failures: list[str] = []
    try:
        t0 = time.perf_counter()
        # innd knows loopback as a feed peer limited to 8 connections until MODE READER
        # hands a connection to nnrpd, hence few at once
        await open_many(target, n, 4, conns, failures)
        opened_in = time.perf_counter() - t0
        await asyncio.sleep(3)
        procs, rss, pss = nnrpd_memory(exclude=before)
        alive = await still_open(conns)
        innd_after = vm_rss_kb(innd_pid) if innd_pid else None
        out = {
            "connections": len(conns), "failed": len(failures), "open_seconds": round(opened_in, 2),
            "nnrpd_processes": procs, "rss_sum_kb": rss, "pss_sum_kb": pss,
            "rss_kb_per_connection": round(rss / max(1, len(conns)), 1),
            "pss_kb_per_connection": round(pss / max(1, len(conns)), 1),
            "innd_rss_before_kb": innd_before, "innd_rss_after_kb": innd_after,
            "sample_alive": alive,
        }
        log(f"  INN     {len(conns):,} idle: {procs} nnrpd processes, RSS {rss / 1024:,.0f} MB "
            f"({out['rss_kb_per_connection']:,.0f} KB each), PSS {pss / 1024:,.0f} MB "
            f"({out['pss_kb_per_connection']:,.0f} KB each); {alive}/100 sampled answer DATE")
        if failures:
            errors.add(phase, f"{len(failures)} of {n:,} connections failed, first: {failures[0]}",
                       target.where)
    finally:
        close_all(conns)
    for _ in range(150):
        if len(pids_named("nnrpd")) <= len(before):
            break
        await asyncio.sleep(0.2)
    return out
