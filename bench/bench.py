#!/usr/bin/env python3
"""End-to-end benchmark of nntpd over real TCP, every answer checked; optionally against INN 2.7.

It starts ``nntpd serve`` as a subprocess on a fresh temporary SQLite
database and a free port (after ``nntpd init``), then runs the workload:

1. POST of N threaded articles (30% roots, the rest replies whose
   References names a random earlier root) over C connections;
2. OVER of the whole group (lines/s), repeated;
3. OVER of 100-article windows at random positions, on 1 connection
   (latency) and over C connections (throughput);
4. ARTICLE by number and by Message-ID over C connections;
5. HDR Subject over the whole group (lines/s), repeated;
6. GROUP and LIST ACTIVE latency on one connection.

Every figure is measured twice: with an ordinary client (delayed ACKs on)
and with a client that sets TCP_QUICKACK after every receive; each client
kind gets a fresh database. Every answer is checked (status codes, counts,
article numbers, Message-IDs, overview fields, bodies byte for byte); a
wrong answer counts as an error and makes the exit status 1.

``--inn`` runs the same workload against INN 2.7 (Debian inn2) on the same
machine (a fresh group per client kind), the two servers taking turns phase
by phase so that each pair is measured seconds apart, measures the client's own
ceiling against a canned server, and idle-connection memory of both, and
prints the comparison with the issue's targets. ``--million`` adds our
server on a group of 1,000,000 articles. See bench/README.md.

Usage: .venv/bin/python bench/bench.py [--inn] [--million] [--articles N] [--json FILE] ...
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ceiling import start_canned
from idle import idle_inn, idle_ours, raise_fd_limit
from report import (
    MODES,
    ceiling_table,
    comparison,
    judge_max,
    judge_ratio,
    phase_table,
    render,
)
from servers import REPO, Inn, OurServer, code_version, free_port, snapshot_code
from workload import (
    PATH_HOST,
    Errors,
    Phase,
    Post,
    Target,
    Turns,
    WorkloadSettings,
    make_posts,
    run_workload,
)

GROUP = "local.test"
MAX_ERRORS_SHOWN = 25


def log(text: str) -> None:
    print(text, flush=True)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": __import__("sqlite3").sqlite_version,
    }


class Run:
    """Everything one invocation measures, for the tables and the JSON."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.errors = Errors()
        # results[server][mode][phase name] = Phase
        self.results: dict[str, dict[str, dict[str, Phase]]] = {}
        self.ceilings: dict[str, dict[str, dict[str, Phase]]] = {}
        self.idle: dict[str, Any] = {}
        self.million: dict[str, Any] | None = None
        self.notes: list[str] = []
        self.servers: dict[str, Any] = {}
        self.verdicts: list[dict[str, Any]] = []
        self.cfg = WorkloadSettings(connections=args.connections, windows=args.windows,
                                    fetches=args.fetches, repeat=args.repeat,
                                    latency_requests=args.latency_requests, timeout=args.phase_timeout,
                                    min_seconds=args.min_seconds)

    def store(self, server: str, mode: str, phases: list[Phase]) -> None:
        self.results.setdefault(server, {})[mode] = {p.name: p for p in phases}


async def run_ceiling(run: Run, posts_by_mode: dict[bool, list[Post]], run_ids: dict[bool, str]) -> None:
    """The unchanged workload against canned servers: in a child process, then in this process."""
    args = run.args
    for variant in ("child process", "same process"):
        run.ceilings[variant] = {}
        for quickack, posts in posts_by_mode.items():
            port = free_port()
            target = Target("ceiling-" + variant.split()[0], port, GROUP, quickack, PATH_HOST)
            proc = server = None
            if variant == "child process":
                proc = subprocess.Popen(
                    [sys.executable, str(Path(__file__).with_name("ceiling.py")), "--port", str(port),
                     "--articles", str(len(posts)), "--seed", str(args.seed),
                     "--run-id", run_ids[quickack], "--group", GROUP],
                    stdout=subprocess.PIPE, text=True)
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":
                    raise RuntimeError("the canned server did not start")
                target.pid = proc.pid
            else:
                server = await start_canned(posts, GROUP, port)
            try:
                phases = await run_workload(target, posts, run.cfg, run.errors, log)
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.wait()
                if server is not None:
                    server.close()
                    await server.wait_closed()
            run.ceilings[variant][target.mode] = {p.name: p for p in phases}
            run.results.setdefault(f"ceiling ({variant})", {})[target.mode] = {p.name: p for p in phases}


async def bench(args: argparse.Namespace) -> int:
    run = Run(args)
    started = datetime.now(timezone.utc)
    version = code_version()
    workdir = Path(tempfile.mkdtemp(prefix="nntpd-bench-"))
    code = REPO if args.no_snapshot else snapshot_code(workdir / "code")
    run.servers["code"] = {"version": version, "run_from": str(code)}
    modes = [m == "quick-ack" for m in args.modes]
    do_idle = args.idle or args.inn
    idle_steps = [int(x) for x in args.idle_connections.split(",") if x]
    if do_idle and not args.no_workload:
        limit = raise_fd_limit(max(idle_steps) + 1000)
        if limit < max(idle_steps) + 100:
            idle_steps = [s for s in idle_steps if s + 100 <= limit] or [limit - 100]
            run.notes.append(f"RLIMIT_NOFILE is {limit}: idle connections limited to {idle_steps}")
    stamp = f"{int(time.time()):x}"
    run_ids = {q: f"{stamp}{'q' if q else 'o'}" for q in modes}
    inn: Inn | None = None
    log(f"nntpd bench: code {version}, "
        f"{'no workload' if args.no_workload else f'{args.articles:,} articles'}, "
        f"{args.connections} connections, ours as serve --workers {args.workers}, "
        f"client kinds: {', '.join(MODES[q] for q in modes)}; "
        f"{'with INN, ' if args.inn else ''}workdir {workdir}")
    if not args.no_snapshot:
        log(f"code under test: the working tree as of now ({version}), copied to {code}")
    try:
        posts_by_mode: dict[bool, list[Post]] = {}
        if not args.no_workload:
            posts_by_mode = {q: make_posts(args.articles, args.seed, run_ids[q]) for q in modes}
            body_bytes = sum(len(p.body) for p in posts_by_mode[modes[0]])
            log(f"articles: {args.articles:,} per client kind, {body_bytes / 1e6:.1f} MB of bodies")

        if args.inn:
            inn = Inn(log)
            inn.ensure_installed()
            try:
                await inn.start()
            except BaseException:
                inn.stop()
                raise
            run.servers["INN"] = {"version": inn.version, "port": inn.port,
                                  "started_by_bench": inn.started_by_us}

        if (args.client_ceiling or args.inn) and not args.no_workload:
            log("client ceiling (canned server):")
            await run_ceiling(run, posts_by_mode, run_ids)

        if not args.no_workload:
            for n, quickack in enumerate(modes):
                posts = posts_by_mode[quickack]
                mode = MODES[quickack]
                log(f"workload, {mode} client:")
                port = args.port or free_port()
                ours = OurServer(workdir / f"ours-{'q' if quickack else 'o'}", port, code=code,
                                 workers=args.workers)
                ours.init()
                if n == 0:
                    where = ours.code_path()
                    run.servers["code"]["imported_from"] = where
                    if str(code) not in where.split()[0]:
                        run.errors.add(Phase("setup"), f"the server imports another copy of the code: {where}")
                await ours.start()
                try:
                    target = Target("ours", port, GROUP, quickack, PATH_HOST, pid=ours.pid)
                    if inn is None:
                        phases = await run_workload(target, posts, run.cfg, run.errors, log)
                    else:
                        # Phase by phase in turns (see workload.Turns); INN goes first every other kind.
                        group = f"local.bench.r{stamp}.{'quickack' if quickack else 'ordinary'}"
                        inn.newgroup(group)
                        theirs = Target("INN", inn.port, group, quickack, xref_host=None, open_limit=4)
                        turns = Turns(*(("ours", "INN") if n % 2 == 0 else ("INN", "ours")))
                        both = await asyncio.gather(
                            run_workload(target, posts, run.cfg, run.errors, log, turns),
                            run_workload(theirs, posts, run.cfg, run.errors, log, turns),
                            return_exceptions=True)  # neither left running if the other fails
                        gc.unfreeze()
                        for outcome in both:
                            if isinstance(outcome, BaseException):
                                raise outcome
                        phases, inn_phases = both
                        run.store("INN", mode, inn_phases)
                    run.store("ours", mode, phases)
                    if do_idle and n == len(modes) - 1:
                        count = phases[0].extra.get("accepted", 0) if phases else 0
                        run.idle["ours"] = await idle_ours(target, ours.pid or 0, idle_steps, count,
                                                           run.errors, log)
                    alive = ours.alive()
                finally:
                    code = ours.stop()
                run.servers.setdefault("ours", {})[mode] = {
                    "exit_status": code, "database_bytes": ours.db_bytes(), "alive_at_end": alive}
                if not alive or code not in (0, None):
                    failed = Phase(f"server ({mode})")
                    run.errors.add(failed, f"server was not running at the end (exit status {code})"
                                   if not alive else f"server exit status {code} after SIGTERM", "[ours] ")
                if run.errors.items and not any(k == "log_tail" for k in run.servers["ours"]):
                    run.servers["ours"]["log_tail"] = ours.log_tail()
            if inn is not None and do_idle:
                target = Target("INN", inn.port, GROUP, False, xref_host=None, open_limit=4)
                run.idle["INN"] = await idle_inn(target, args.inn_idle, inn.innd_pid(), run.errors, log)

        if args.million:
            from million import run_million

            log(f"million phase ({args.million_articles:,} articles):")
            run.million = await run_million(args, workdir, run.cfg, modes, log, code=code)
            run.errors.items.extend(run.million["errors"].items)
    finally:
        if inn is not None:
            if not args.inn_keep_groups:
                inn.remove_groups()
            inn.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    report(run, version, started)
    if args.json:
        write_json(run, args, version, started)
    return 1 if run.errors.items else 0


def report(run: Run, version: str, started: datetime) -> None:
    args = run.args
    log("")
    workload = ("workload skipped" if args.no_workload else
                f"{args.articles:,} articles, {args.connections} connections")
    log(f"nntpd bench {started:%Y-%m-%d %H:%M} UTC, code {version}, {workload}; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    for server, by_mode in run.results.items():
        for mode, phases in by_mode.items():
            log(f"\n{server}, {mode} client:")
            log(phase_table(list(phases.values())))

    if run.ceilings:
        log("\nclient ceiling: the same workload and checks against a canned server "
            "(rates; 'same process' shares the client's core):")
        log(ceiling_table(run.ceilings, args.connections))

    if "ours" in run.results:
        title = "ours vs INN 2.7, same machine, same run" if "INN" in run.results else "ours"
        ceiling_note = "; 'client ceiling': the higher of the two canned-server rates" if run.ceilings else ""
        log(f"\n{title} (latencies: lower is better{ceiling_note}):")
        log(comparison({k: v for k, v in run.results.items() if k in ("ours", "INN")},
                       run.ceilings, args.connections, run.verdicts))

    if run.idle:
        log("\nidle connections (greeting + MODE READER, then nothing):")
        rows = [("server", "connections", "memory", "per connection", "target", "result")]
        ours = run.idle.get("ours")
        if ours:
            for step in ours["steps"]:
                per = step["kb_per_connection"]
                target = result = ""
                if step["connections"] >= 10000:
                    target, result = "<= 64 KB", ("pass" if per <= 64 else
                                                 f"FAIL ({(per / 64 - 1) * 100:.0f}% over)")
                    run.verdicts.append({"figure": "memory per idle connection (10,000)", "client": "",
                                         "ours": per, "inn": None, "ratio": None,
                                         "target": target, "result": result})
                rows.append(("ours", f"{step['connections']:,}",
                             f"RSS +{(step['rss_kb'] - ours['rss_before_kb']) / 1024:,.1f} MB",
                             f"{per:.1f} KB", target, result))
        inn = run.idle.get("INN")
        if inn:
            rows.append(("INN (nnrpd)", f"{inn['connections']:,}",
                         f"RSS {inn['rss_sum_kb'] / 1024:,.0f} MB", f"{inn['rss_kb_per_connection']:,.0f} KB RSS",
                         "", ""))
            rows.append(("", "", f"PSS {inn['pss_sum_kb'] / 1024:,.0f} MB",
                         f"{inn['pss_kb_per_connection']:,.0f} KB PSS", "", ""))
        log(render(rows, right_from=1))
        if inn:
            log(f"INN runs one nnrpd process per reader connection, so it is measured at "
                f"{inn['connections']:,} connections only (10,000 would need ~20 GB); RSS counts "
                "shared pages once per process, PSS shares them out. Kernel socket buffers "
                "are not included for either server.")
        if ours:
            last = ours["steps"][-1]
            log(f"ours with {last['connections']:,} idle connections: GROUP on another connection "
                f"p50 {last['group_p50_ms']:.2f} ms, p99 {last['group_p99_ms']:.2f} ms")

    if run.million:
        million_report(run)

    if run.verdicts:
        passed = sum(v["result"] == "pass" for v in run.verdicts)
        log(f"\ntargets: {passed} of {len(run.verdicts)} pass")
        for v in run.verdicts:
            if v["result"] != "pass":
                log(f"  {v['figure']} ({v['client'] or '-'}): {v['target']}: {v['result']}")

    for note in run.notes:
        log(f"note: {note}")
    log(f"\n{len(run.errors.items)} error(s)")
    for item in run.errors.items[:MAX_ERRORS_SHOWN]:
        log(f"  ERROR {item}")
    if len(run.errors.items) > MAX_ERRORS_SHOWN:
        log(f"  ... and {len(run.errors.items) - MAX_ERRORS_SHOWN} more")
    tail = run.servers.get("ours", {}).get("log_tail") or (run.million or {}).get("log_tail")
    if run.errors.items and tail:
        log("our server's log (tail):\n" + tail)


def million_report(run: Run) -> None:
    m = run.million
    assert m is not None
    load = m["load"]
    log(f"\nmillion phase: {load.get('count', 0):,} articles"
        + (f" loaded in {load['wall_seconds']:.0f} s ({load['count'] / load['seconds']:,.0f}/s through "
           f"Store.post, {load.get('in_flight')} in flight)" if load.get("wall_seconds") else " (reused)")
        + f", database {load.get('database_bytes', 0) / 1e9:.2f} GB")
    phases = m["phases"]
    rows = [("figure", "client", "value", "target", "result")]

    def add(label: str, mode: str, shown: str, target: str, result: str) -> None:
        rows.append((label, mode, shown, target, result))
        run.verdicts.append({"figure": label, "client": mode, "ours": shown, "inn": None, "ratio": None,
                             "target": target, "result": result})

    for mode in MODES:
        for name, label in (("GROUP (large group)", "GROUP p99"),
                            ("OVER 100-article window, 1 conn (large group)", "OVER 100-article window p99")):
            p = phases.get(name, {}).get(mode)
            if p is None:
                continue
            got = p.pct(0.99) if p.ops and not p.errors else None
            add(f"{label} (p50 {p.pct(0.5):.2f} ms)", mode, f"{got:.2f} ms" if got is not None else "-",
                "< 5 ms", judge_max(got, 5.0, "ms"))
        p = phases.get("OVER 1- (large group)", {}).get(mode)
        if p is not None and p.extra:
            growth = p.extra["rss_growth_mb"] if not p.errors else None
            add(f"OVER 1- RSS growth ({p.rate():,.0f} lines/s, {p.seconds:.1f} s)", mode,
                f"{growth:.1f} MB" if growth is not None else "-", "< 50 MB", judge_max(growth, 50.0, "MB"))
        full = phases.get("POST (large group)", {}).get(mode)
        empty = phases.get("POST (empty)", {}).get(mode)
        if full is not None and empty is not None:
            ok = full.ops and empty.ops and not full.errors and not empty.errors
            ratio = full.rate() / empty.rate() if ok and empty.rate() else None
            add(f"POST {full.ops:,} over {run.args.connections} conns: "
                f"{full.rate():,.0f}/s (large group) vs {empty.rate():,.0f}/s (empty)", mode,
                f"{ratio:.2f}" if ratio is not None else "-", "ratio >= 0.8", judge_ratio(ratio, 0.8))
    log(render(rows, right_from=2))
    for mode in MODES:
        mode_phases = [by_mode[mode] for by_mode in phases.values() if mode in by_mode]
        if mode_phases:
            log(f"\nlarge group, {mode} client:")
            log(phase_table(mode_phases))


def write_json(run: Run, args: argparse.Namespace, version: str, started: datetime) -> None:
    def phases_json(by_mode: dict[str, dict[str, Phase]]) -> dict[str, Any]:
        return {mode: {name: p.summary() for name, p in ph.items()} for mode, ph in by_mode.items()}

    result: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "code": version,
        "parameters": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": machine(),
        "servers": {k: v for k, v in run.servers.items()},
        "results": {server: phases_json(by_mode) for server, by_mode in run.results.items()},
        "idle": run.idle,
        "targets": run.verdicts,
        "notes": run.notes,
        "errors": run.errors.items,
    }
    if run.million is not None:
        m = run.million
        result["million"] = {
            "load": m["load"],
            "phases": {name: {mode: p.summary() for mode, p in by_mode.items()}
                       for name, by_mode in m["phases"].items()},
            "exit_status": m.get("exit_status"),
        }
    Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    log(f"results written to {args.json}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20000, help="articles to post (default 20000)")
    parser.add_argument("--connections", type=int, default=8, help="client connections (default 8)")
    parser.add_argument("--port", type=int, default=0, help="port for our server (default: a free one)")
    parser.add_argument("--json", metavar="FILE", help="also write all results as JSON")
    parser.add_argument("--windows", type=int, default=1000,
                        help="OVER 100-article window requests, per connection setting (default 1000)")
    parser.add_argument("--fetches", type=int, default=2000,
                        help="ARTICLE requests of each kind (default 2000)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of the whole-group OVER and HDR (default 5)")
    parser.add_argument("--latency-requests", type=int, default=300,
                        help="GROUP and LIST ACTIVE requests for their latency (default 300)")
    parser.add_argument("--min-seconds", type=float, default=2.0,
                        help="request phases go on past their count until this long (default 2)")
    parser.add_argument("--seed", type=int, default=3977, help="random seed (default 3977)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="run our server as 'serve --workers N' (default: one per CPU, "
                             "as on a dedicated machine; 1: a single process)")
    parser.add_argument("--no-snapshot", action="store_true",
                        help="run the checkout's code itself, not a copy taken when the run starts")
    parser.add_argument("--modes", default="ordinary,quick-ack",
                        help="client kinds, comma-separated: ordinary, quick-ack (default both)")
    parser.add_argument("--phase-timeout", type=float, default=900,
                        help="seconds a phase may take before it counts as stalled (default 900)")
    parser.add_argument("--inn", action="store_true",
                        help="also run the workload against INN 2.7 and compare (implies "
                             "--client-ceiling and --idle); needs root")
    parser.add_argument("--inn-idle", type=int, default=1000,
                        help="idle connections to INN, one nnrpd process each (default 1000)")
    parser.add_argument("--inn-keep-groups", action="store_true",
                        help="leave the run's local.bench.* groups in INN (default: rmgroup at the end)")
    parser.add_argument("--client-ceiling", action="store_true",
                        help="also run the workload against canned servers (the client's own ceiling)")
    parser.add_argument("--idle", action="store_true",
                        help="also measure memory per idle connection of our server")
    parser.add_argument("--idle-connections", default="1000,10000",
                        help="idle connection totals for our server (default 1000,10000)")
    parser.add_argument("--no-workload", action="store_true",
                        help="skip the workload (and ceiling, idle); with --million: only that phase")
    parser.add_argument("--million", action="store_true",
                        help="also run the large-group phase (fills a database through the store)")
    parser.add_argument("--million-articles", type=int, default=1_000_000,
                        help="articles in the large group (default 1000000)")
    parser.add_argument("--million-posts", type=int, default=2000,
                        help="POSTs for the full-vs-empty comparison (default 2000)")
    parser.add_argument("--million-in-flight", type=int, default=2000,
                        help="posts the loader keeps in flight (default 2000)")
    parser.add_argument("--million-db", metavar="FILE",
                        help="reuse a database filled by an earlier --million --keep run "
                             "(numbers.map must be next to it)")
    args = parser.parse_args()
    if args.articles < 1 or args.connections < 1:
        parser.error("--articles and --connections must be at least 1")
    args.modes = [m.strip().lower().replace("_", "-") for m in args.modes.split(",") if m.strip()]
    if not args.modes or any(m not in ("ordinary", "quick-ack", "quickack") for m in args.modes):
        parser.error("--modes takes ordinary and/or quick-ack")
    args.modes = ["quick-ack" if m == "quickack" else m for m in args.modes]
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
