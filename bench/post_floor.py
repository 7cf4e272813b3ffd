"""POST with and without storage: what the protocol alone costs, and what storing adds.

    .venv/bin/python bench/post_floor.py --workers 1 --rounds 3 --posts 6000

It runs ``nntpd serve`` as the benchmark does, on a fresh database each
round, alternately unchanged ("stored") and with ``Store.post`` answering
at once without storing anything or handing the post to a writer process
("not stored": every other step of a POST, parsing, checks, injection and
both answers, is the same). The benchmark's own client posts the
workload's articles over C connections and checks every answer; the
figures are the rate and the server's CPU per post (all its processes,
from /proc). The difference between the two is what storing a post costs,
the hand-off to the writer process included. Rounds alternate because the
speed of a shared machine moves between minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from procfs import cpu_seconds
from servers import OurServer, free_port
from workload import PATH_HOST, Errors, Target, make_posts, phase_post

GROUP = "local.test"
WARM_UP = 500
BENCH = Path(__file__).resolve().parent


def skip_storage() -> None:
    """Make ``Store.post`` answer at once (numbers counted in memory, nothing stored)."""
    from storage.store import Store
    from storage.writer import PostOutcome

    numbers: dict[str, int] = {}

    async def post(self: Store, article: object, poster: object) -> PostOutcome:
        assigned = {}
        for group in article.newsgroups:  # type: ignore[attr-defined]
            numbers[group] = assigned[group] = numbers.get(group, 0) + 1
        return PostOutcome(article.message_id, assigned)  # type: ignore[attr-defined]

    Store.post = post  # type: ignore[method-assign]


async def one_round(stored: bool, args: argparse.Namespace, folder: Path, run: int,
                    errors: Errors) -> tuple[float, float, float]:
    """(posts/s, server CPU us per post, client CPU us per post) of one fresh server."""
    name = "stored" if stored else "not-stored"
    server = OurServer(folder / f"{name}-{run}", free_port(), workers=args.workers)
    if not stored:
        launcher = (f"import sys; sys.path.insert(0, {str(BENCH)!r}); import post_floor; "
                    "post_floor.skip_storage(); from cli import main; main()")
        server.base = [sys.executable, "-c", launcher, "--config", str(server.config)]
    server.init()
    await server.start()
    try:
        target = Target("ours", server.port, GROUP, args.quickack, PATH_HOST, pid=server.pid)
        posts = make_posts(WARM_UP + args.posts, args.seed, f"{int(time.time()):x}f{run}{name[0]}")
        await phase_post(target, posts[:WARM_UP], args.connections, errors)
        server_cpu, client_cpu = cpu_seconds(server.pid) or 0.0, time.process_time()
        phase = await phase_post(target, posts[WARM_UP:], args.connections, errors)
        server_cpu = (cpu_seconds(server.pid) or 0.0) - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        server.stop()
    return phase.ops / phase.seconds, server_cpu / phase.ops * 1e6, client_cpu / phase.ops * 1e6


async def main_async(args: argparse.Namespace) -> int:
    errors = Errors()
    results: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    print(f"{'round':>5}  {'variant':<10}  {'posts/s':>8}  {'server CPU/post':>15}  {'client CPU/post':>15}")
    with tempfile.TemporaryDirectory(prefix="nntpd-post-floor-") as folder:
        for run in range(args.rounds):
            for stored in (True, False):
                rate, server, client = await one_round(stored, args, Path(folder), run, errors)
                results[stored].append((rate, server, client))
                print(f"{run + 1:>5}  {'stored' if stored else 'not stored':<10}  {rate:>8,.0f}"
                      f"  {server:>12.0f} us  {client:>12.0f} us", flush=True)
    medians = {stored: [statistics.median(r[i] for r in rows) for i in range(3)]
               for stored, rows in results.items()}
    print(f"\nmedians ({args.workers} worker{'s' if args.workers != 1 else ''}, "
          f"{args.connections} connections, {args.posts:,} posts a round):")
    for stored in (True, False):
        rate, server, client = medians[stored]
        print(f"  {'stored' if stored else 'not stored':<10}  {rate:>8,.0f}/s  server {server:.0f} us per post"
              f"  client {client:.0f} us per post")
    print(f"  storing a post costs the server {medians[True][1] - medians[False][1]:.0f} us of CPU")
    for line in errors.items:
        print("error:", line)
    return 1 if errors.items else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds of each variant")
    parser.add_argument("--posts", type=int, default=6000, help="timed posts a round")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=3977)
    parser.add_argument("--quick-ack", dest="quickack", action="store_true",
                        help="set TCP_QUICKACK on the client's sockets")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
