"""Interoperability with the standard library's nntplib client (a real RFC 3977 client).

nntplib is blocking and the server runs in the test's event loop, so every
nntplib call goes through asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

from nntp_helpers import make_article, unique_id


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.fixture
async def nntp(server) -> AsyncIterator[nntplib.NNTP]:
    conn = await call(nntplib.NNTP, server.host, server.port, timeout=10)
    try:
        yield conn
    finally:
        try:
            await call(conn.quit)
        except (nntplib.NNTPError, OSError, EOFError):
            pass


async def post_two(nntp: nntplib.NNTP) -> list[str]:
    ids = [unique_id("lib"), unique_id("lib")]
    for n, mid in enumerate(ids, 1):
        extra = (f"References: {ids[0]}",) if n == 2 else ()
        resp = await call(nntp.post, make_article(message_id=mid, subject=f"lib {n}", extra=extra,
                                                  body=f"body {n}\r\n.dot line\r\n".encode()))
        assert resp.startswith("240"), resp
    return ids


async def test_connect_and_capabilities(nntp):
    """RFC 3977 5.1 (greeting 200) and 5.2 (CAPABILITIES) as nntplib reads them."""
    assert nntp.getwelcome().startswith("200")
    caps = await call(nntp.getcapabilities)
    assert caps["VERSION"] == ["2"]
    for name in ("READER", "POST", "OVER", "HDR", "NEWNEWS", "LIST"):
        assert name in caps, caps
    assert nntp.nntp_version == 2


async def test_group(nntp):
    """RFC 3977 6.1.1: nntplib parses 211 count first last name."""
    await post_two(nntp)
    resp, count, first, last, name = await call(nntp.group, "local.test")
    assert resp.startswith("211")
    assert (count, first, last, name) == (2, 1, 2, "local.test")


async def test_group_unknown_raises_411(nntp):
    """RFC 3977 6.1.1.2: 411 reaches nntplib as a temporary error."""
    with pytest.raises(nntplib.NNTPTemporaryError, match="^411"):
        await call(nntp.group, "no.such.group")


async def test_post_bytes_then_article(nntp):
    """RFC 3977 6.3.1 / 6.2.1: post bytes (nntplib dot-stuffs), read it back by number and id."""
    ids = await post_two(nntp)
    await call(nntp.group, "local.test")
    resp, info = await call(nntp.article, 1)
    assert resp.startswith("220")
    assert (info.number, info.message_id) == (1, ids[0])
    blank = info.lines.index(b"")
    assert b"Subject: lib 1" in info.lines[:blank]
    assert b"Xref: test.example local.test:1" in info.lines[:blank]
    assert info.lines[blank + 1 :] == [b"body 1", b".dot line"]
    resp, info = await call(nntp.article, ids[1])
    assert (info.number, info.message_id) == (0, ids[1])


async def test_over(nntp):
    """RFC 3977 8.3 / 8.4: nntplib reads LIST OVERVIEW.FMT and parses OVER lines with it."""
    ids = await post_two(nntp)
    await call(nntp.group, "local.test")
    resp, overviews = await call(nntp.over, (1, 2))
    assert resp.startswith("224")
    assert [n for n, _ in overviews] == [1, 2]
    first, second = overviews[0][1], overviews[1][1]
    assert first["subject"] == "lib 1"
    assert first["message-id"] == ids[0]
    assert second["references"] == ids[0]
    assert int(first[":lines"]) == 2
    assert int(first[":bytes"]) > 0
    assert first["xref"] == "test.example local.test:1"


async def test_over_open_range(nntp):
    """RFC 3977 8.3.2: nntplib sends 'first-' for an open range."""
    await post_two(nntp)
    await call(nntp.group, "local.test")
    resp, overviews = await call(nntp.over, (2, None))
    assert [n for n, _ in overviews] == [2]


async def test_xover(nntp):
    """RFC 2980 2.8: nntplib's xover() parses the same overview lines."""
    ids = await post_two(nntp)
    await call(nntp.group, "local.test")
    resp, overviews = await call(nntp.xover, 1, 2)
    assert resp.startswith("224")
    assert [(n, ov["message-id"]) for n, ov in overviews] == [(1, ids[0]), (2, ids[1])]


async def test_xhdr(nntp):
    """RFC 2980 2.6: XHDR subject over a range."""
    await post_two(nntp)
    await call(nntp.group, "local.test")
    resp, lines = await call(nntp.xhdr, "subject", "1-2")
    assert resp.startswith("221")
    assert lines == [("1", "lib 1"), ("2", "lib 2")]


async def test_body_head_stat(nntp):
    """RFC 3977 6.2.2-6.2.4: HEAD, BODY and STAT as nntplib parses them."""
    ids = await post_two(nntp)
    await call(nntp.group, "local.test")
    resp, info = await call(nntp.head, 2)
    assert resp.startswith("221") and info.number == 2 and info.message_id == ids[1]
    assert b"" not in info.lines
    assert f"References: {ids[0]}".encode() in info.lines
    resp, info = await call(nntp.body, 2)
    assert resp.startswith("222")
    assert info.lines == [b"body 2", b".dot line"]
    resp, number, mid = await call(nntp.stat, 1)
    assert resp.startswith("223") and (number, mid) == (1, ids[0])
    resp, number, mid = await call(nntp.stat, ids[1])
    assert (number, mid) == (0, ids[1])


async def test_missing_article_errors(nntp):
    """RFC 3977 6.2.1.2: 423 for a missing number, 430 for an unknown id."""
    await post_two(nntp)
    await call(nntp.group, "local.test")
    with pytest.raises(nntplib.NNTPTemporaryError, match="^423"):
        await call(nntp.stat, 9)
    with pytest.raises(nntplib.NNTPTemporaryError, match="^430"):
        await call(nntp.stat, "<nope@example.com>")


async def test_next_last(nntp):
    """RFC 3977 6.1.3 / 6.1.4: next and last move the current article (223), 421/422 at the ends."""
    ids = await post_two(nntp)
    await call(nntp.group, "local.test")
    resp, number, mid = await call(nntp.next)
    assert resp.startswith("223") and (number, mid) == (2, ids[1])
    with pytest.raises(nntplib.NNTPTemporaryError, match="^421"):
        await call(nntp.next)
    resp, number, mid = await call(nntp.last)
    assert (number, mid) == (1, ids[0])
    with pytest.raises(nntplib.NNTPTemporaryError, match="^422"):
        await call(nntp.last)


async def test_list(server, nntp):
    """RFC 3977 7.6.3: nntplib parses LIST ACTIVE lines into GroupInfo(group, last, first, flag)."""
    await server.store.create_group("local.ro", status="n")
    await post_two(nntp)
    resp, groups = await call(nntp.list)
    assert resp.startswith("215")
    by_name = {g.group: g for g in groups}
    assert (by_name["local.test"].last, by_name["local.test"].first, by_name["local.test"].flag) == ("2", "1", "y")
    assert by_name["local.ro"].flag == "n"
    resp, groups = await call(nntp.list, "local.r*")
    assert [g.group for g in groups] == ["local.ro"]


async def test_descriptions(nntp):
    """RFC 3977 7.6.6: LIST NEWSGROUPS as nntplib's description() reads it."""
    assert await call(nntp.description, "local.test") == "Sample group"


async def test_newnews(nntp):
    """RFC 3977 7.4: nntplib sends NEWNEWS group yyyymmdd hhmmss and gets the ids."""
    ids = await post_two(nntp)
    since = datetime.now(timezone.utc) - timedelta(days=1)
    resp, found = await call(nntp.newnews, "local.test", since)
    assert resp.startswith("230")
    assert sorted(found) == sorted(ids)
    resp, found = await call(nntp.newnews, "local.test", datetime.now(timezone.utc) + timedelta(days=1))
    assert found == []


async def test_newgroups(server, nntp):
    """RFC 3977 7.3: nntplib's newgroups() lists groups created since the date."""
    await server.store.create_group("local.fresh", description="new")
    resp, groups = await call(nntp.newgroups, datetime.now(timezone.utc) - timedelta(days=1))
    assert resp.startswith("231")
    assert {"local.test", "local.fresh"} <= {g.group for g in groups}


async def test_date(nntp):
    """RFC 3977 7.1: nntplib parses the 111 answer (UTC) into a datetime."""
    resp, when = await call(nntp.date)
    assert resp.startswith("111")
    utc_now = datetime.now(timezone.utc).replace(tzinfo=None)
    assert abs((when - utc_now).total_seconds()) < 60


async def test_post_refused_raises(nntp):
    """RFC 3977 6.3.1.2: a 441 reaches nntplib as an error; the connection stays usable."""
    with pytest.raises(nntplib.NNTPTemporaryError, match="^441"):
        await call(nntp.post, make_article(newsgroups="no.such.group"))
    resp, *_ = await call(nntp.group, "local.test")
    assert resp.startswith("211")


async def test_quit(server):
    """RFC 3977 5.4: QUIT answers 205 and nntplib closes cleanly."""
    conn = await call(nntplib.NNTP, server.host, server.port, timeout=10)
    resp = await call(conn.quit)
    assert resp.startswith("205")
