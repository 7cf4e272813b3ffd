"""Line ends in client blocks (RFC 3977 3.1.1) and the README's rule for bare LF.

The rule: CRLF or a bare LF ends a line, as INN's nnrpd accepts; ``.`` then
LF ends a block like ``.`` CRLF; articles are stored with CRLF. A POST never
hangs on its line ends and no dot line turns into an empty line.
"""

from __future__ import annotations

import asyncio

import pytest

from conftest import running
from nntp_helpers import unique_id, unstuff

from nntpd.protocol import BlockReceiver


def feed_all(pieces: list[bytes]) -> tuple[bool, bytes]:
    receiver = BlockReceiver(10_000)
    done = False
    for piece in pieces:
        done = receiver.feed(piece)
    return done, receiver.result()


def test_bare_lf_dot_line_ends_the_block():
    assert feed_all([b"a\n", b".\n"]) == (True, b"a\r\n")
    assert feed_all([b"a\nb\n.\n"]) == (True, b"a\r\nb\r\n")


def test_stuffed_lines_are_unstuffed_with_either_line_end():
    assert feed_all([b"..x\n", b"..\r\n", b".\r\n"]) == (True, b".x\r\n.\r\n")


def test_lone_cr_is_kept():
    assert feed_all([b"a\rb\r\n.\r\n"]) == (True, b"a\rb\r\n")


def _raw_article(mid: str, body: str, eol: str = "\r\n") -> bytes:
    head = f"From: a@example.com{eol}Newsgroups: local.test{eol}Subject: s{eol}Message-ID: {mid}{eol}"
    return (head + eol + body).encode()


async def _post_raw(client, data: bytes) -> str:  # type: ignore[no-untyped-def]
    """POST ``data`` exactly as given (no dot-stuffing or line-end fixes); the final status."""
    assert (await client.cmd("POST")).startswith("340")
    await client.send(data)
    return await asyncio.wait_for(client.line(), 5)


async def _article(client, message_id: str) -> bytes:  # type: ignore[no-untyped-def]
    status = await client.cmd(f"ARTICLE {message_id}")
    assert status.startswith("220"), status
    return unstuff(await client.raw_block())


async def test_crlf_post_ended_by_dot_lf_and_pipelined_commands(tmp_path):
    """A mixed client: CRLF lines, then '.' LF; the command pipelined after it is answered."""
    async with running(tmp_path) as handle:
        client = await handle.connect()
        data = _raw_article(unique_id("mixed"), "body\r\n.\nDATE\r\n")
        assert (await _post_raw(client, data)).startswith("240")
        assert (await asyncio.wait_for(client.line(), 5)).startswith("111")
        await client.close()


# (why, body as sent, line end of the headers, the stored article's end)
STORED_AS = [
    # Was a hang until a CRLF dot line came, with each '.\n' stored as an empty line.
    ("bare LF lines and '.' LF", "first\n..dotted\n\nlast\n.\n", "\n",
     b"\r\n\r\nfirst\r\n.dotted\r\n\r\nlast\r\n"),
    # The documented rule: a bare LF ends a line wherever it stands.
    ("LF inside a CRLF line", "one\ntwo\r\n.\r\n", "\r\n", b"\r\n\r\none\r\ntwo\r\n"),
    ("empty lines and a stuffed first dot", "\n\n\n..\n.\n", "\n", b"\r\n\r\n\r\n\r\n\r\n.\r\n"),
]


@pytest.mark.parametrize("why,body,eol,stored_end", STORED_AS, ids=[c[0] for c in STORED_AS])
async def test_posted_lines_are_stored_with_crlf(tmp_path, why, body, eol, stored_end):
    """RFC 3977 3.1.1 and the README's rule: either line end is taken, CRLF is stored, never a bare LF."""
    async with running(tmp_path) as handle:
        client = await handle.connect()
        mid = unique_id("eol")
        assert (await _post_raw(client, _raw_article(mid, body, eol=eol))).startswith("240")
        stored = await _article(client, mid)
        assert stored.endswith(stored_end)
        assert b"\n" not in stored.replace(b"\r\n", b"")
        await client.close()


async def test_article_split_across_many_small_writes(tmp_path):
    """The terminator found wherever the TCP segments split it."""
    async with running(tmp_path) as handle:
        client = await handle.connect()
        mid = unique_id("split")
        assert (await client.cmd("POST")).startswith("340")
        article = _raw_article(mid, ".. x\r\nend\r\n.\r\n")
        for i in range(len(article)):
            await client.send(article[i : i + 1])
            await asyncio.sleep(0)
        assert (await asyncio.wait_for(client.line(), 5)).startswith("240")
        assert (await _article(client, mid)).endswith(b"\r\n\r\n. x\r\nend\r\n")
        await client.close()


async def test_nul_or_lone_cr_in_an_article_is_refused(tmp_path):
    """RFC 3977 3.6: an article holds no NUL, and CR only before LF; 441, never stored changed."""
    async with running(tmp_path) as handle:
        client = await handle.connect()
        for body in ("a\x00b\r\n.\r\n", "a\rb\r\n.\r\n"):
            mid = unique_id("bad")
            status = await _post_raw(client, _raw_article(mid, body))
            assert status.startswith("441"), status
            assert (await client.cmd(f"STAT {mid}")).startswith("430")
        await client.close()
