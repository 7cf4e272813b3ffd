"""Guard state shared by the processes of `serve --workers N` (see guards.py).

Why: each worker is a process of its own, so counts kept in a dict are
per process, and N workers would give a client N times the login
attempts, the posts and the connections the settings allow. These tables
live in one shared memory map, made before the workers fork.

- A POSIX record lock on the map's file serialises every change; the kernel
  drops it if its process dies, so a crashed worker cannot wedge the rest.
  It is per process, which is what is needed: each process uses its guards
  from its event loop thread only.
- Keys are hashed with a secret made at start-up, so nobody outside can
  aim keys at one slot to push another key's records out of the table.
- A key lives in one of ``PROBE`` slots after its hash's slot; every
  lookup scans all of them, so emptying a slot never hides another key.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .config import Settings
from .guards import ConnectionLimits, Guards, LoginThrottle, RateLimiter

PROBE = 16
EVENT_SLOTS = 16384
MAX_TABLE_BYTES = 64 * 1024 * 1024
EMPTY = 0


class _Table:
    """Fixed-size slots of ``width`` 8-byte words in a shared map; word 0 of a slot is its key."""

    def __init__(self, slots: int, width: int) -> None:
        self.slots = max(PROBE, slots)
        self.width = width
        size = self.slots * width * 8
        # In memory only where the system allows (Linux); a temporary file elsewhere.
        if hasattr(os, "memfd_create"):
            self._file = open(os.memfd_create("nntpd-guards"), "r+b", buffering=0)  # noqa: SIM115
        else:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115
        self._file.truncate(size)
        self._map = mmap.mmap(self._file.fileno(), size)  # MAP_SHARED: forks see one table
        self.ints = memoryview(self._map).cast("q")
        self.floats = memoryview(self._map).cast("d")
        self._secret = os.urandom(16)

    @contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.lockf(self._file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._file.fileno(), fcntl.LOCK_UN)

    def hash(self, key: str) -> int:
        digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8,
                                 key=self._secret).digest()
        return int.from_bytes(digest, "little", signed=True) or 1

    def probe(self, hashed: int) -> list[int]:
        """The word offsets of the slots where ``hashed`` may live."""
        start = hashed % self.slots
        return [((start + i) % self.slots) * self.width for i in range(PROBE)]

    def find(self, hashed: int) -> tuple[int | None, int | None]:
        """(the key's slot, the first empty slot), word offsets or None."""
        empty = None
        for base in self.probe(hashed):
            key = self.ints[base]
            if key == hashed:
                return base, empty
            if key == EMPTY and empty is None:
                empty = base
        return None, empty

    def lookup(self, key: str) -> int | None:
        """The slot of ``key``, or None (call with the lock held)."""
        return self.find(self.hash(key))[0]

    def clear(self, base: int) -> None:
        self.ints[base:base + self.width] = memoryview(bytes(self.width * 8)).cast("q")


class SharedEvents:
    """``guards.Events`` in shared memory: slot = key, count, then ``depth`` event times."""

    def __init__(self, depth: int, slots: int = EVENT_SLOTS) -> None:
        self.depth = max(1, depth)
        width = 2 + self.depth
        slots = min(slots, MAX_TABLE_BYTES // (width * 8))
        self._table = _Table(slots, width)

    def _times(self, base: int) -> list[float]:
        count = self._table.ints[base + 1]
        return list(self._table.floats[base + 2:base + 2 + count])

    def recent(self, key: str, since: float) -> int:
        table = self._table
        with table.locked():
            base = table.lookup(key)
            return 0 if base is None else sum(1 for at in self._times(base) if at > since)

    def add(self, key: str, at: float) -> None:
        table = self._table
        hashed = table.hash(key)
        with table.locked():
            self._add(hashed, table.find(hashed), at)

    def take(self, key: str, at: float, since: float, limit: int) -> bool:
        table = self._table
        hashed = table.hash(key)
        with table.locked():
            found = table.find(hashed)
            base = found[0]
            if (0 if base is None else sum(1 for t in self._times(base) if t > since)) >= limit:
                return False
            self._add(hashed, found, at)
            return True

    def _add(self, hashed: int, found: tuple[int | None, int | None], at: float) -> None:
        """Add an event to the key's slot, or to a new one (call with the lock held)."""
        table = self._table
        base, empty = found
        if base is None:
            base = empty if empty is not None else self._stalest(hashed)
            table.clear(base)
            table.ints[base] = hashed
        count = table.ints[base + 1]
        if count < self.depth:
            table.floats[base + 2 + count] = at
            table.ints[base + 1] = count + 1
        else:  # keep the newest ``depth``: the new time replaces the oldest
            times = self._times(base)
            table.floats[base + 2 + times.index(min(times))] = at

    def discard(self, key: str, at: float) -> None:
        table = self._table
        with table.locked():
            base = table.lookup(key)
            if base is None or at not in (times := self._times(base)):
                return
            if len(times) == 1:
                table.clear(base)
                return
            last = base + 2 + len(times) - 1  # the last time moves into the gap
            table.floats[base + 2 + times.index(at)] = table.floats[last]
            table.ints[base + 1] = len(times) - 1

    def _stalest(self, hashed: int) -> int:
        """The slot (of a full probe range) whose latest event is the oldest: it goes."""
        def latest(base: int) -> float:
            return max(self._times(base), default=float("-inf"))
        return min(self._table.probe(hashed), key=latest)

    def clear(self, key: str) -> None:
        table = self._table
        with table.locked():
            if (base := table.lookup(key)) is not None:
                table.clear(base)


class SharedCounts:
    """``guards.Counts`` in shared memory: slot = key, then one count per worker.

    Each process counts in its own column (``worker``), so when a worker
    dies the parent can drop what it held (``forget``): its connections
    closed with it. With every slot of a key's probe range taken the key
    is refused: the table has twice as many slots as there can be keys,
    so that takes an improbable crowd of hashes.
    """

    def __init__(self, keys: int, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self.worker = 0
        self._table = _Table(2 * keys + 1, 1 + self.workers)

    def _total(self, base: int) -> int:
        return sum(self._table.ints[base + 1:base + 1 + self.workers])

    def take(self, key: str, limit: int) -> bool:
        table = self._table
        hashed = table.hash(key)
        with table.locked():
            base, empty = table.find(hashed)
            if base is None:
                if empty is None or limit <= 0:
                    return False
                base = empty
                table.ints[base] = hashed
            elif self._total(base) >= limit:
                return False
            table.ints[base + 1 + self.worker] += 1
            return True

    def give_back(self, key: str) -> None:
        table = self._table
        with table.locked():
            if (base := table.lookup(key)) is None:
                return
            own = base + 1 + self.worker
            table.ints[own] = max(0, table.ints[own] - 1)
            if self._total(base) == 0:
                table.clear(base)

    def forget(self, worker: int) -> None:
        """Drop every count of ``worker`` (a process that is gone)."""
        table = self._table
        with table.locked():
            for base in range(0, table.slots * table.width, table.width):
                if table.ints[base] != EMPTY:
                    table.ints[base + 1 + worker] = 0
                    if self._total(base) == 0:
                        table.clear(base)


@dataclass
class SharedGuards(Guards):
    """Guards shared by the processes of one server; ``counts`` are its connection counts."""

    counts: SharedCounts

    def for_worker(self, index: int) -> None:
        """Called in each process after the fork: which column its counts go in."""
        self.counts.worker = index

    def worker_gone(self, index: int) -> None:
        self.counts.forget(index)


def shared_guards(settings: Settings, workers: int) -> SharedGuards:
    """Guards whose counts the ``workers`` processes forked after this call share."""
    server, auth = settings.server, settings.auth
    counts = SharedCounts(server.max_connections + 1, workers)
    return SharedGuards(
        counts=counts,
        connections=ConnectionLimits(server.max_connections, server.max_connections_per_address,
                                     counts),
        post_rate=RateLimiter(server.posts_per_minute,
                              events=SharedEvents(RateLimiter.depth_for(server.posts_per_minute))),
        logins=LoginThrottle.from_settings(auth, SharedEvents),
    )
