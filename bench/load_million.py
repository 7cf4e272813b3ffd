"""Fill a database with many articles quickly, through the project's own store (no NNTP).

Used by ``bench.py --million``; it can also be run by itself:

    PYTHONPATH=. .venv/bin/python bench/load_million.py --db /tmp/m/bench.sqlite3 \\
        --count 1000000 --map /tmp/m/numbers.map

The database must exist (``nntpd init`` creates it with the group
``local.test``). Articles are built from ``--templates`` workload articles
(the same generator as the benchmark: threaded, bodies 300 B to 4 KB, some
UTF-8): copy k of template t gets the Message-ID ``<b{t}.c{k}.{run}@...>``
and its References point into the same copy, so the threads stay whole.
Each article goes through ``prepare_article`` and ``Store.post`` exactly as
a POST does, with ``--in-flight`` posts submitted at once so the store's
writer commits them in batches (of up to 256). The article number each one
got is written to ``--map`` (template and copy per number) so the benchmark
can check every answer it later gets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from array import array
from datetime import datetime, timezone
from pathlib import Path

# the code under test: the run's snapshot (bench.py sets NNTPD_BENCH_CODE), else this checkout
sys.path.insert(0, os.environ.get("NNTPD_BENCH_CODE") or str(Path(__file__).resolve().parent.parent))

from workload import PATH_HOST, Post, make_posts  # noqa: E402

GROUP = "local.test"
TOKEN = "~K~"


def template_posts(templates: int, seed: int, run_id: str) -> list[Post]:
    return make_posts(templates, seed, f"c{TOKEN}.{run_id}")


def copy_post(template: Post, k: int) -> Post:
    key = str(k)
    return Post(template.index, template.message_id.replace(TOKEN, key), template.subject,
                template.from_, template.references.replace(TOKEN, key), template.body,
                template.lines, template._body_wire)


def write_map(path: Path, meta: dict, tmpl: array, copy: array) -> None:
    with open(path, "wb") as f:
        f.write(json.dumps(meta).encode() + b"\n")
        tmpl.tofile(f)
        copy.tofile(f)


def read_map(path: Path) -> tuple[dict, array, array]:
    with open(path, "rb") as f:
        meta = json.loads(f.readline())
        n = meta["count"] + 1
        tmpl, copy = array("I"), array("I")
        tmpl.fromfile(f, n)
        copy.fromfile(f, n)
    return meta, tmpl, copy


async def load(args: argparse.Namespace) -> None:
    from nntpd.article import prepare_article
    from storage import Poster, Store

    store = Store(f"sqlite+aiosqlite:///{args.db}", path_host=PATH_HOST)
    await store.check_schema()
    group = await store.group(GROUP)
    if group is None or group.count:
        sys.exit(f"{args.db}: group {GROUP} missing or not empty")
    templates = template_posts(args.templates, args.seed, args.run_id)
    raws = [p.raw(GROUP) for p in templates]
    authors = [p.from_.split("<")[1].rstrip(">") for p in templates]
    token = TOKEN.encode()
    tmpl = array("I", bytes(4 * (args.count + 1)))
    copy = array("I", bytes(4 * (args.count + 1)))
    todo = iter(range(args.count))
    done = 0
    failures: list[str] = []
    t0 = time.perf_counter()
    last = t0

    async def worker() -> None:
        nonlocal done, last
        for i in todo:
            t, k = i % args.templates, i // args.templates
            raw = raws[t].replace(token, str(k).encode())
            try:
                article = prepare_article(raw, path_host=PATH_HOST, now=datetime.now(timezone.utc))
                outcome = await store.post(article, Poster(author_key=authors[t]))
            except Exception as exc:  # noqa: BLE001 - reported, the load goes on
                failures.append(f"article {i}: {exc.__class__.__name__}: {exc}")
                continue
            number = outcome.numbers[GROUP]
            tmpl[number] = t
            copy[number] = k
            done += 1
            if done % 50000 == 0:
                now = time.perf_counter()
                print(f"  loaded {done:,} articles, {50000 / (now - last):,.0f}/s lately, "
                      f"{done / (now - t0):,.0f}/s overall", flush=True)
                last = now

    try:
        await asyncio.gather(*(worker() for _ in range(args.in_flight)))
    finally:
        await store.close()
    seconds = time.perf_counter() - t0
    meta = {"count": done, "templates": args.templates, "seed": args.seed, "run_id": args.run_id,
            "group": GROUP, "seconds": round(seconds, 1), "in_flight": args.in_flight,
            "failures": len(failures)}
    write_map(Path(args.map), meta, tmpl, copy)
    print(f"loaded {done:,} articles in {seconds:.0f} s ({done / seconds:,.0f}/s); "
          f"{len(failures)} failure(s)", flush=True)
    for item in failures[:10]:
        print("  FAILED " + item)
    print("RESULT " + json.dumps(meta), flush=True)
    if failures or done != args.count:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description="fill a database through Store.post")
    parser.add_argument("--db", required=True, help="SQLite file (after nntpd init)")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--map", required=True, help="where to write the number map")
    parser.add_argument("--templates", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=3977)
    parser.add_argument("--run-id", default=f"{int(time.time()):x}m")
    parser.add_argument("--in-flight", type=int, default=2000)
    asyncio.run(load(parser.parse_args()))


if __name__ == "__main__":
    main()
