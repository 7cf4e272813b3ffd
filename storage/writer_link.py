"""One writer process for the server's posts (SQLite): INN's nnrpd/innd split.

Why: on SQLite every commit is serialised anyway, and a server process that
both speaks NNTP and commits spends about 40% of a post's CPU on the
protocol and 60% on storing it, all on one core. With a writer process the
server processes parse and answer while the writer commits on another core,
and posts from every server process meet in one queue, so the group commits
grow instead of taking turns on the write lock (which made two workers post
slower than one). Measured on two cores it posts about as fast as one
process: the hand-off costs CPU too (bench/RESULTS.md).

The link is a socket pair made before the fork. The server side
(``WriterLink``) sends the prepared article's fields; the writer side
(``serve_writer``) feeds them to its ``ArticleWriter`` and sends back each
outcome once it is committed, so 240 still means committed. Everything one
side has to send in a loop turn goes in one frame (a 4-byte length and a
pickle; both ends are this program's own forked processes), so a batch of
posts costs one system call each way.

If the writer process goes away, the server process commits posts itself
(the same write lock keeps the two paths apart); a post the writer had
already received is committed again unless it is already stored, so it is
neither lost nor stored twice (the Message-ID is unique).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import socket
import struct
from collections.abc import Callable
from dataclasses import fields
from itertools import count
from operator import attrgetter
from typing import Any

from .writer import ArticleWriter, Poster, PostOutcome, PostRejected, StoredArticle

log = logging.getLogger("nntpd.writer")

_LENGTH = struct.Struct("!I")
_ARTICLE_FIELDS = attrgetter(*(f.name for f in fields(StoredArticle)))


class WriterGone(Exception):
    """The link to the writer process is closed; commit in this process instead."""


class WriterLost(WriterGone):
    """The writer went away after it got the post: it may or may not have committed it."""


def _frame(items: list[Any]) -> bytes:
    data = pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def _read_frame(reader: asyncio.StreamReader) -> list[Any] | None:
    """The next frame's items, or None at end of stream."""
    try:
        (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        return pickle.loads(await reader.readexactly(length))
    except asyncio.IncompleteReadError:
        return None


class _Outbox:
    """Items to send, written as one frame at the end of the loop turn."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._items: list[Any] = []

    def put(self, item: Any) -> None:
        if not self._items:
            asyncio.get_running_loop().call_soon(self._flush)
        self._items.append(item)

    def _flush(self) -> None:
        items, self._items = self._items, []
        if items and not self._writer.is_closing():
            self._writer.write(_frame(items))


class WriterLink:
    """The server process's end: ``submit`` is ``ArticleWriter.submit`` done by the writer process."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock: socket.socket | None = sock
        self._outbox: _Outbox | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._opening: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[PostOutcome]] = {}
        self._ids = count()
        self._gone = False

    @property
    def usable(self) -> bool:
        return not self._gone

    async def open(self) -> None:
        """Start using the link (in the running loop).

        Opened when the server starts rather than at the first post, so that a
        writer that dies is noticed at once and no post is sent into a dead link.
        """
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        await asyncio.shield(self._opening)  # posts that come meanwhile wait for it too

    async def submit(self, article: Any, poster: Poster) -> PostOutcome:
        """Have the writer process store the article; WriterGone if it cannot be asked."""
        if self._outbox is None and not self._gone:
            await self.open()
        if self._gone or self._outbox is None:
            raise WriterGone()
        request = next(self._ids)
        future: asyncio.Future[PostOutcome] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        self._outbox.put((request, _ARTICLE_FIELDS(article),
                          (poster.author_key, poster.account, poster.role)))
        try:
            return await future
        finally:
            self._pending.pop(request, None)

    async def _open(self) -> None:
        assert self._sock is not None
        sock, self._sock = self._sock, None
        try:
            reader, self._writer = await asyncio.open_unix_connection(sock=sock)
        except OSError as exc:
            log.error("cannot use the link to the writer process: %s", exc)
            sock.close()
            self._lost()
            return
        self._outbox = _Outbox(self._writer)
        self._reader_task = asyncio.create_task(self._read(reader), name="writer-link")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while (items := await _read_frame(reader)) is not None:
                for request, ok, payload in items:
                    future = self._pending.get(request)
                    if future is None or future.done():
                        continue
                    if ok:
                        future.set_result(PostOutcome(*payload))
                    else:
                        reason, retry = payload
                        future.set_exception(PostRejected(reason, retry=retry))
        except (ConnectionError, OSError) as exc:
            log.error("link to the writer process failed: %s", exc)
        except asyncio.CancelledError:
            self._gone = True  # this process is stopping: the writer is not gone
            raise
        finally:
            self._lost()

    def _lost(self) -> None:
        if not self._gone:
            self._gone = True
            log.error("writer process gone (%d posts in flight); this process commits posts itself",
                      len(self._pending))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(WriterLost())

    async def close(self) -> None:
        self._gone = True
        if self._opening is not None:
            await asyncio.gather(self._opening, return_exceptions=True)
        if self._reader_task is not None:
            self._reader_task.cancel()
            try:
                await self._reader_task
            except asyncio.CancelledError:
                pass
        if self._writer is not None:
            self._writer.close()
        elif self._sock is not None:
            self._sock.close()
        self._lost()


async def serve_writer(writer: ArticleWriter, socks: list[socket.socket],
                       stop: asyncio.Event | None = None) -> None:
    """Store what the links send until every link has closed or ``stop`` is set.

    Posts already received are committed and answered before this returns.
    """
    stop = stop or asyncio.Event()
    in_flight: set[asyncio.Future[PostOutcome]] = set()

    async def serve_link(sock: socket.socket) -> None:
        reader, stream = await asyncio.open_unix_connection(sock=sock)
        outbox = _Outbox(stream)
        try:
            while (items := await _read_frame(reader)) is not None:
                for request, article_fields, poster_fields in items:
                    future = writer.enqueue(StoredArticle(*article_fields), Poster(*poster_fields))
                    in_flight.add(future)
                    future.add_done_callback(_answer(outbox, request, in_flight))
        except (ConnectionError, OSError) as exc:
            log.info("a server process's link closed: %s", exc)
        finally:
            while in_flight:  # answered before the stream closes
                await asyncio.wait(set(in_flight))
            await asyncio.sleep(0)  # the outbox's flush
            stream.close()

    links = [asyncio.create_task(serve_link(sock)) for sock in socks]
    every_link = asyncio.gather(*links, return_exceptions=True)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([every_link, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    while in_flight:
        await asyncio.wait(set(in_flight))
    await asyncio.sleep(0)  # the outboxes' last flush
    for link in links:
        link.cancel()
    await every_link


def _answer(outbox: _Outbox, request: int,
            in_flight: set[asyncio.Future[PostOutcome]]) -> Callable[[asyncio.Future[PostOutcome]], None]:
    def done(future: asyncio.Future[PostOutcome]) -> None:
        in_flight.discard(future)
        exc = PostRejected("post abandoned", retry=True) if future.cancelled() else future.exception()
        if exc is None:
            outcome = future.result()
            outbox.put((request, True, (outcome.message_id, outcome.numbers, outcome.held)))
        elif isinstance(exc, PostRejected):
            outbox.put((request, False, (str(exc), exc.retry)))
        else:
            log.error("post failed in the writer: %r", exc)
            outbox.put((request, False, (f"storage error ({exc.__class__.__name__}); try again later", True)))
    return done


def run_writer_process(url: str, path_host: str, socks: list[socket.socket]) -> None:
    """Body of the forked writer process: commit posts until SIGTERM or every link closes."""
    from .store import Store

    async def main() -> None:
        store = Store(url, path_host=path_host)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # The server processes stop first (Ctrl-C reaches the whole process group);
        # the writer stops on the parent's SIGTERM or when every link has closed.
        loop.add_signal_handler(signal.SIGINT, lambda: None)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await serve_writer(store.article_writer, socks, stop)
        finally:
            await store.close()

    asyncio.run(main())
