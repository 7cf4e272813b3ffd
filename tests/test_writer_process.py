"""The writer process (storage/writer_link.py): server processes hand posts to one committer.

Here the writer side runs in the test's own loop on a second Store over the
same SQLite file, joined to the server's Store by a real socket pair, as
`nntpd serve` joins the processes. The writer's Store gets another path
host, so the Xref of a stored article (written by whoever commits) shows
which side committed it. The forked processes of `nntpd serve` are
tested in test_workers.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from conftest import ServerHandle, connected, running, write_lock_held
from nntp_helpers import until
from storage import Poster, PostRejected, Store
from storage.writer import StoredArticle
from storage.writer_link import WriterLink, serve_writer

WRITER_HOST = "writer.example"


def sent_to_the_writer(link: WriterLink, writer_end: socket.socket, count: int):  # type: ignore[no-untyped-def]
    """A predicate: ``count`` posts are waiting on ``link`` and the writer side has read
    every byte of them off its socket (it queues what it read within a few loop turns)."""
    def check() -> bool:
        if len(link._pending) != count:
            return False
        try:
            return not writer_end.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
    return check


async def settle() -> None:
    """A few loop turns: what the writer side has read is parsed and queued."""
    for _ in range(20):
        await asyncio.sleep(0)


class WriterSide:
    def __init__(self, store: Store, sock: socket.socket) -> None:
        self.store = store
        self.sock = sock
        self.link: WriterLink | None = None
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(serve_writer(store.article_writer, [sock], self.stop))


@asynccontextmanager
async def with_writer(handle: ServerHandle) -> AsyncIterator[WriterSide]:
    writer_end, server_end = socket.socketpair()
    side = WriterSide(Store(handle.url, path_host=WRITER_HOST), writer_end)
    side.link = WriterLink(server_end)
    await handle.store.use_writer_process(side.link)
    try:
        yield side
    finally:
        side.stop.set()
        await asyncio.wait_for(side.task, 10)
        await side.store.close()


def article(n: int, group: str = "local.test") -> str:
    return (f"From: poster{n}@example.com\nNewsgroups: {group}\nSubject: question {n}\n"
            f"Message-ID: <wp{n}@example.com>\n\nbody {n}\n")


async def xref(client, message_id: str) -> str:
    assert (await client.cmd(f"HEAD {message_id}")).startswith("221")
    return next(line for line in await client.block() if line.startswith("Xref: "))


async def test_posts_are_committed_by_the_writer_and_answered_240(tmp_path):
    """RFC 3977 6.3.1: 240 once stored; here the writer side stores, numbers stay gap-free."""
    async with running(tmp_path) as handle, with_writer(handle):
        async def poster(n: int) -> list[str]:
            async with connected(handle) as client:
                return [await client.post(article(n * 10 + k)) for k in range(5)]

        statuses = [s for each in await asyncio.gather(*(poster(n) for n in range(8))) for s in each]
        assert all(s.startswith("240") for s in statuses), statuses
        async with connected(handle) as client:
            assert (await client.cmd("LISTGROUP local.test")).startswith("211 40 1 40")
            assert await client.block() == [str(n) for n in range(1, 41)]
            assert (await xref(client, "<wp3@example.com>")).startswith(f"Xref: {WRITER_HOST} local.test:")


async def test_refusals_from_the_writer_keep_their_code_and_reason(tmp_path):
    """RFC 3977 6.3.1: 441 for a duplicate; a moderated group's post is held, still 240."""
    async with running(tmp_path) as handle, with_writer(handle):
        await handle.store.create_group("local.moderated", status="m")
        async with connected(handle) as client:
            assert (await client.post(article(1))).startswith("240")
            duplicate = await client.post(article(1))
            assert duplicate.startswith("441") and "Duplicate Message-ID" in duplicate
            held = await client.post(article(2, "local.moderated"))
            assert held.startswith("240") and "held for moderation" in held
        assert [h.message_id for h in await handle.store.held()] == ["<wp2@example.com>"]


async def test_without_the_writer_the_server_commits_itself(tmp_path):
    """Nothing is lost when the writer goes away: later posts are stored by the server process."""
    async with running(tmp_path) as handle:
        async with with_writer(handle) as side, connected(handle) as client:
            assert (await client.post(article(1))).startswith("240")
            side.stop.set()
            await asyncio.wait_for(side.task, 10)
            assert (await client.post(article(2))).startswith("240")
            assert (await xref(client, "<wp1@example.com>")).startswith(f"Xref: {WRITER_HOST} ")
            assert (await xref(client, "<wp2@example.com>")).startswith("Xref: test.example ")


async def test_a_post_in_flight_when_the_writer_dies_is_stored_once(tmp_path):
    """Posts the writer got before it went away are stored by the server instead: 240 and 235.

    RFC 3977 6.3.1/6.3.2: 240/235 mean the article was stored. Here the writer side
    is cut off but still running (it commits too when the lock frees), so the
    Message-ID's uniqueness is what keeps one copy: nothing lost, nothing twice.
    """
    async with running(tmp_path, feed_access="loopback") as handle:
        writer_end, server_end = socket.socketpair()
        writer_store = Store(handle.url, path_host=WRITER_HOST)
        task = asyncio.create_task(serve_writer(writer_store.article_writer, [writer_end]))
        link = WriterLink(server_end)
        await handle.store.use_writer_process(link)
        relayed = ("Path: peer.example!not-for-mail\r\nFrom: feed@example.com\r\n"
                   "Newsgroups: local.test\r\nSubject: relayed\r\n"
                   "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
                   "Message-ID: <relayed@example.com>\r\n\r\nbody\r\n.\r\n")
        try:
            async with write_lock_held(handle.db_path, 2), connected(handle) as poster, \
                    connected(handle) as feeder:
                posted = asyncio.create_task(poster.post(article(1)))
                assert (await feeder.cmd("IHAVE <relayed@example.com>")).startswith("335")
                await feeder.send(relayed)
                transferred = asyncio.create_task(feeder.line())
                # the writer has both and waits for the lock
                assert await until(sent_to_the_writer(link, writer_end, 2))
                await settle()
                assert not posted.done() and not transferred.done()
                writer_end.shutdown(socket.SHUT_RDWR)  # the writer process dies
                assert (await asyncio.wait_for(posted, 10)).startswith("240")
                assert (await asyncio.wait_for(transferred, 10)).startswith("235")
                await asyncio.wait_for(task, 10)  # the cut-off writer has committed or refused, and stopped
                assert (await poster.cmd("GROUP local.test")).startswith("211 2 1 2")
                assert (await poster.post(article(2))).startswith("240")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await writer_store.close()


async def test_a_held_post_in_flight_when_the_writer_dies_is_answered_held(tmp_path):
    """A post to a moderated group the writer got before it went away: 240 "held", queued once.

    Whichever side holds it first (the cut-off writer when the lock frees, or
    the server posting again), the other finds the same article in the queue.
    """
    async with running(tmp_path) as handle:
        await handle.store.create_group("local.moderated", status="m")
        writer_end, server_end = socket.socketpair()
        writer_store = Store(handle.url, path_host=WRITER_HOST)
        task = asyncio.create_task(serve_writer(writer_store.article_writer, [writer_end]))
        link = WriterLink(server_end)
        await handle.store.use_writer_process(link)
        try:
            async with write_lock_held(handle.db_path, 1), connected(handle) as poster:
                posted = asyncio.create_task(poster.post(article(1, "local.moderated")))
                # the writer has it and waits for the lock
                assert await until(sent_to_the_writer(link, writer_end, 1))
                await settle()
                assert not posted.done()
                writer_end.shutdown(socket.SHUT_RDWR)  # the writer process dies
                answer = await asyncio.wait_for(posted, 10)
                assert answer.startswith("240") and "held for moderation" in answer, answer
            await asyncio.wait_for(task, 10)  # the cut-off writer has held it or found it held, and stopped
            assert [h.message_id for h in await handle.store.held()] == ["<wp1@example.com>"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await writer_store.close()


async def test_posting_again_refuses_another_article_with_the_same_message_id(tmp_path):
    """After the writer went away, a duplicate is this post only if header and body match."""
    async with running(tmp_path) as handle, connected(handle) as client:
        assert (await client.post(article(1))).startswith("240")
        stored = await handle.store.article_by_id("<wp1@example.com>")
        assert stored is not None
        same = StoredArticle(message_id="<wp1@example.com>", header=stored.header, body=stored.body,
                             newsgroups=("local.test",), subject="question 1",
                             from_="poster1@example.com", date="", references="",
                             thread_key="<wp1@example.com>", bytes=0, lines=0, overview="")
        outcome = await handle.store._post_again(same, Poster("poster1@example.com"))
        assert outcome.message_id == "<wp1@example.com>"
        other = dataclasses.replace(same, body=b"another body\r\n")
        with pytest.raises(PostRejected, match="Duplicate Message-ID"):
            await handle.store._post_again(other, Poster("poster1@example.com"))
        assert (await client.cmd("GROUP local.test")).startswith("211 1 1 1")


async def test_writer_answers_what_it_received_before_stopping(tmp_path):
    """Stopping the writer (SIGTERM in `nntpd serve`) still commits and answers posts it has."""
    async with running(tmp_path) as handle:
        async with with_writer(handle) as side, write_lock_held(handle.db_path, 1), \
                connected(handle) as client:
            answer = asyncio.create_task(client.post(article(1)))
            assert side.link is not None
            assert await until(sent_to_the_writer(side.link, side.sock, 1))
            await settle()
            side.stop.set()  # while the post waits for the lock
            assert (await asyncio.wait_for(answer, 10)).startswith("240")
            assert (await xref(client, "<wp1@example.com>")).startswith(f"Xref: {WRITER_HOST} ")
