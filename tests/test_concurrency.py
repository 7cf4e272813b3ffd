"""Many clients posting at once: numbering, visibility and Xref stay consistent.

RFC 3977 section 6 (article numbers), 6.1.1.2 (water marks), 6.3.1 (240 means
the article was accepted), RFC 5537 3.2 (Xref).
"""

from __future__ import annotations

import asyncio

import pytest

from nntp_helpers import make_article, unique_id

CLIENTS = 50
POSTS_EACH = 4


def crossposted(i: int, j: int) -> bool:
    return (i + j) % 3 == 0


@pytest.fixture
async def burst(server):
    """Run the burst once per test: 50 clients x 4 posts, while a watcher polls GROUP."""
    await server.store.create_group("local.other", description="cross-post target")
    clients = [await server.connect() for _ in range(CLIENTS)]
    watcher = await server.connect()
    done = asyncio.Event()
    highs: dict[str, list[tuple[int, int]]] = {"local.test": [], "local.other": []}

    async def watch() -> None:
        while not done.is_set():
            for name, seen in highs.items():
                parts = (await watcher.cmd(f"GROUP {name}")).split()
                assert parts[0] == "211", parts
                seen.append((int(parts[1]), int(parts[3])))
            await asyncio.sleep(0)

    async def poster(i: int, client) -> list[tuple[str, str, str, bool]]:
        out = []
        for j in range(POSTS_EACH):
            mid = unique_id(f"c{i}p{j}")
            groups = "local.test,local.other" if crossposted(i, j) else "local.test"
            status = await client.post(make_article(message_id=mid, newsgroups=groups,
                                                    subject=f"client {i} post {j}"))
            # 240 means committed: the article must be retrievable at once.
            stat = await client.cmd(f"STAT {mid}")
            out.append((mid, status, stat, crossposted(i, j)))
        return out

    watch_task = asyncio.create_task(watch())
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(poster(i, c) for i, c in enumerate(clients))), 30
        )
    finally:
        done.set()
        await watch_task
        for c in clients:
            await c.close()
    reader = await server.connect()
    try:
        yield [r for per_client in results for r in per_client], highs, reader
    finally:
        await watcher.close()
        await reader.close()


async def listgroup(client, name: str) -> list[int]:
    status = await client.cmd(f"LISTGROUP {name}")
    assert status.startswith("211"), status
    return [int(n) for n in await client.block()]


async def overview_by_number(client, name: str) -> dict[int, list[str]]:
    await client.cmd(f"GROUP {name}")
    status = await client.cmd("XOVER 1-")
    assert status.startswith("224"), status
    return {int(row.split("\t")[0]): row.split("\t") for row in await client.block()}


async def test_all_posts_answered_240_and_committed(burst):
    """RFC 3977 6.3.1.2: every post gets 240, and a 240 article is retrievable at once."""
    posts, _, _ = burst
    assert len(posts) == CLIENTS * POSTS_EACH
    for mid, status, stat, _ in posts:
        assert status.startswith("240"), (mid, status)
        assert stat.startswith(f"223 0 {mid}"), (mid, stat)


async def test_numbers_are_exactly_1_to_n_in_each_group(burst):
    """RFC 3977 section 6 / 6.1.2.2: numbers are unique per group; no gaps or duplicates here."""
    posts, _, reader = burst
    n_test = len(posts)
    n_other = sum(1 for p in posts if p[3])
    assert n_other > 0
    assert await listgroup(reader, "local.test") == list(range(1, n_test + 1))
    assert await listgroup(reader, "local.other") == list(range(1, n_other + 1))
    assert (await reader.cmd("GROUP local.test")) == f"211 {n_test} 1 {n_test} local.test"
    assert (await reader.cmd("GROUP local.other")) == f"211 {n_other} 1 {n_other} local.other"


async def test_every_message_id_fetchable(burst):
    """RFC 3977 6.2.4: each posted Message-ID is found by STAT (number 0, no group selected)."""
    posts, _, reader = burst
    for mid, *_ in posts:
        assert (await reader.cmd(f"STAT {mid}")).startswith(f"223 0 {mid}")


async def test_each_article_listed_once_per_group(burst):
    """RFC 3977 6.1.2.2 / RFC 5536 3.1.4: each article appears once in each of its groups."""
    posts, _, reader = burst
    test_ids = [row[4] for row in (await overview_by_number(reader, "local.test")).values()]
    other_ids = [row[4] for row in (await overview_by_number(reader, "local.other")).values()]
    assert sorted(test_ids) == sorted(p[0] for p in posts)
    assert sorted(other_ids) == sorted(p[0] for p in posts if p[3])


async def test_xref_matches_listgroup_numbers(burst):
    """RFC 5537 3.2 / RFC 3977 8.3.2: the Xref of article n in group g names g:n, and every group it is in."""
    posts, _, reader = burst
    where: dict[str, set[str]] = {}
    xrefs: dict[str, str] = {}
    for name in ("local.test", "local.other"):
        for number, row in (await overview_by_number(reader, name)).items():
            mid, xref = row[4], row[8]
            assert xref.startswith("Xref: test.example "), xref
            where.setdefault(mid, set()).add(f"{name}:{number}")
            assert xrefs.setdefault(mid, xref) == xref  # same Xref in every group
    for mid, xref in xrefs.items():
        assert set(xref.split()[2:]) == where[mid], (mid, xref)
    # And HEAD agrees with the overview for a sample of articles.
    for mid, *_ in posts[:: max(1, len(posts) // 20)]:
        assert (await reader.cmd(f"HEAD {mid}")).startswith("221")
        lines = await reader.block()
        assert [ln for ln in lines if ln.startswith("Xref: ")] == [xrefs[mid]]


async def test_water_marks_never_decrease_while_posting(burst):
    """RFC 3977 6.1.1.2: the high water mark never goes down (and the count follows it up)."""
    _, highs, _ = burst
    for name, seen in highs.items():
        assert seen, name
        marks = [high for _, high in seen]
        assert marks == sorted(marks), name
        counts = [count for count, _ in seen]
        assert counts == sorted(counts), name
