"""CPU per post of the group commit alone: no network, no protocol, no other process.

    .venv/bin/python bench/group_commit.py --batches 1,2,4,8 --posts 3000

For each batch size B it makes a fresh SQLite database (``local.test``),
prepares the benchmark's articles with ``prepare_article`` (not timed), then
submits them through ``Store.post`` B at a time and waits for each group:
the store's writer takes the B posts queued in one loop turn as one batch,
so this is the cost of one transaction per B posts, as the writer process
of ``serve --workers N`` pays it. CPU is the process's own (every thread,
the WAL checkpoint thread included). Figures move with the machine, so
compare runs made in the same minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

# the code under test: NNTPD_BENCH_CODE if set (as bench.py does), else this checkout
sys.path.insert(0, os.environ.get("NNTPD_BENCH_CODE") or str(Path(__file__).resolve().parent.parent))

from workload import PATH_HOST, make_posts  # noqa: E402

WARM_UP = 200


async def measure(batch: int, posts: int, folder: Path) -> tuple[float, float]:
    """(CPU seconds per post, wall seconds per post) for ``posts`` posts in groups of ``batch``."""
    from nntpd.article import prepare_article
    from storage import Poster, Store

    store = Store(f"sqlite+aiosqlite:///{folder / f'batch{batch}.sqlite3'}", path_host=PATH_HOST)
    try:
        await store.init_schema()
        await store.create_group("local.test")
        now = datetime.now(timezone.utc)
        prepared = [prepare_article(p.raw("local.test"), path_host=PATH_HOST, now=now)
                    for p in make_posts(WARM_UP + posts, 1, f"gc{batch}")]

        async def post_all(articles: list) -> None:
            for start in range(0, len(articles), batch):
                group = articles[start:start + batch]
                await asyncio.gather(*(store.post(a, Poster(a.from_)) for a in group))

        await post_all(prepared[:WARM_UP])
        cpu, wall = time.process_time(), time.perf_counter()
        await post_all(prepared[WARM_UP:])
        return (time.process_time() - cpu) / posts, (time.perf_counter() - wall) / posts
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="1,2,4,8", help="batch sizes, comma-separated")
    parser.add_argument("--posts", type=int, default=3000, help="timed posts per batch size")
    args = parser.parse_args()
    sizes = [int(b) for b in args.batches.split(",")]
    print(f"{'batch':>5}  {'CPU per post':>12}  {'wall per post':>13}")
    with tempfile.TemporaryDirectory(prefix="nntpd-group-commit-") as folder:
        for size in sizes:
            cpu, wall = asyncio.run(measure(size, args.posts, Path(folder)))
            print(f"{size:>5}  {cpu * 1e6:>9.0f} us  {wall * 1e6:>10.0f} us", flush=True)


if __name__ == "__main__":
    main()
