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

from .config import Settings
from .guards import ConnectionLimits, Guards, LoginThrottle, RateLimiter

PROBE = 16
EVENT_SLOTS = 4096
MAX_TABLE_BYTES = 64 * 1024 * 1024
EMPTY = 0


class _Table:
    """Fixed-size slots of ``width`` 8-byte words in a shared map; word 0 of a slot is its key."""

    def __init__(self, slots: int, width: int) -> None:
        self.slots = max(PROBE, slots)
        self.width = width
        size = self.slots * width * 8
        self._file = tempfile.TemporaryFile()
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
            base, _ = table.find(table.hash(key))
            if base is None:
                return 0
            return sum(1 for at in self._times(base) if at > since)

    def add(self, key: str, at: float) -> None:
        table = self._table
        hashed = table.hash(key)
        with table.locked():
            base, empty = table.find(hashed)
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

    def _stalest(self, hashed: int) -> int:
        """The slot (of a full probe range) whose latest event is the oldest: it goes."""
        def latest(base: int) -> float:
            return max(self._times(base), default=float("-inf"))
        return min(self._table.probe(hashed), key=latest)

    def clear(self, key: str) -> None:
        table = self._table
        with table.locked():
            base, _ = table.find(table.hash(key))
            if base is not None:
                table.clear(base)


class SharedCounts:
    """``guards.Counts`` in shared memory: slot = key, count.

    With every slot of a key's probe range taken the key is refused: the
    table has twice as many slots as there can be keys, so that takes an
    improbable crowd of hashes.
    """

    def __init__(self, keys: int) -> None:
        self._table = _Table(2 * keys + 1, 2)

    def take(self, key: str, limit: int) -> bool:
        table = self._table
        hashed = table.hash(key)
        with table.locked():
            base, empty = table.find(hashed)
            if base is None:
                if empty is None or limit <= 0:
                    return False
                table.ints[empty] = hashed
                table.ints[empty + 1] = 1
                return True
            if table.ints[base + 1] >= limit:
                return False
            table.ints[base + 1] += 1
            return True

    def give_back(self, key: str) -> None:
        table = self._table
        with table.locked():
            base, _ = table.find(table.hash(key))
            if base is None:
                return
            if table.ints[base + 1] <= 1:
                table.clear(base)
            else:
                table.ints[base + 1] -= 1


def shared_guards(settings: Settings) -> Guards:
    """Guards whose counts every process forked after this call shares."""
    server, auth = settings.server, settings.auth
    per_address, per_account = LoginThrottle.depths(
        auth.failure_delay, auth.max_failure_delay, auth.lockout_failures)
    return Guards(
        connections=ConnectionLimits(server.max_connections, server.max_connections_per_address,
                                     SharedCounts(server.max_connections + 1)),
        post_rate=RateLimiter(server.posts_per_minute,
                              events=SharedEvents(RateLimiter.depth_for(server.posts_per_minute))),
        logins=LoginThrottle(auth.failure_delay, auth.max_failure_delay, auth.lockout_failures,
                             auth.lockout_seconds, by_address=SharedEvents(per_address),
                             by_account=SharedEvents(per_account)),
    )
