"""Answer lookups that arrive together with one query.

Each await into the database thread costs ~55 us and a SQLAlchemy async
statement takes several, so one query per ARTICLE caps a server at a few
thousand requests per second. A Batcher keeps one query in flight at a
time; lookups that arrive meanwhile (from any connection) wait and are
answered together by the next ``IN (...)`` query. Under light load a
lookup runs alone at once, so latency does not suffer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger("nntpd.storage")

MAX_KEYS = 500  # stays under SQLite's bound-parameter limits with room to spare


class Batcher(Generic[K, V]):
    def __init__(self, fetch_many: Callable[[list[K]], Awaitable[dict[K, V]]]) -> None:
        self._fetch_many = fetch_many
        self._pending: dict[K, list[asyncio.Future[V | None]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V | None:
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append(future)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            keys = list(self._pending)[:MAX_KEYS]
            batch = {key: self._pending.pop(key) for key in keys}
            try:
                found = await self._fetch_many(keys)
            except Exception as exc:  # noqa: BLE001 - handed to every waiter
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for key, futures in batch.items():
                value = found.get(key)
                for future in futures:
                    if not future.done():
                        future.set_result(value)

    async def close(self) -> None:
        await stop_task(self._task)


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task (a batcher's, the writer's) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
