"""Server-wide guards against abuse: connection limits, post rate limits, failed-login throttling.

The policies (``RateLimiter``, ``LoginThrottle``, ``ConnectionLimits``) are
plain classes with an injectable clock. What they remember lives in a store:
a dict in this process (``LocalEvents``, ``LocalCounts``), or a table in
shared memory (``shared_guards.py``) that every worker of ``serve --workers N``
reads and writes, so N workers do not give a client N times the attempts.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from .config import Settings

Clock = Callable[[], float]


class Events(Protocol):
    """The most recent event times per key (at most ``depth`` of them are kept)."""

    depth: int

    def recent(self, key: str, since: float) -> int:
        """How many of the key's kept events are later than ``since``."""

    def add(self, key: str, at: float) -> None: ...

    def clear(self, key: str) -> None: ...


class Counts(Protocol):
    """Counters per key that go up and down (open connections)."""

    def take(self, key: str, limit: int) -> bool:
        """Add one unless the key already counts ``limit``; True if added."""

    def give_back(self, key: str) -> None: ...


class LocalEvents:
    """``Events`` for one process."""

    def __init__(self, depth: int) -> None:
        self.depth = max(1, depth)
        self._events: dict[str, deque[float]] = {}

    def recent(self, key: str, since: float) -> int:
        events = self._events.get(key)
        if not events:
            return 0
        while events and events[0] <= since:
            events.popleft()
        if not events:
            del self._events[key]
        return len(events)

    def add(self, key: str, at: float) -> None:
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque(maxlen=self.depth)
        events.append(at)

    def clear(self, key: str) -> None:
        self._events.pop(key, None)


class LocalCounts:
    """``Counts`` for one process."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def take(self, key: str, limit: int) -> bool:
        if self._counts[key] >= limit:
            return False
        self._counts[key] += 1
        return True

    def give_back(self, key: str) -> None:
        self._counts[key] -= 1
        if self._counts[key] <= 0:
            del self._counts[key]


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (0 = unlimited)."""

    def __init__(self, limit: int, window: float = 60.0, clock: Clock = time.monotonic,
                 events: Events | None = None) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events = events if events is not None else LocalEvents(self.depth_for(limit))

    @staticmethod
    def depth_for(limit: int) -> int:
        """Events to keep per key: the last ``limit`` decide whether one more is allowed."""
        return max(1, limit)

    def allow(self, key: str) -> bool:
        if self.limit <= 0:
            return True
        now = self._clock()
        if self._events.recent(key, now - self.window) >= self.limit:
            return False
        self._events.add(key, now)
        return True


class LoginThrottle:
    """Delay per recent failure from an address; temporary lock of an account after many."""

    def __init__(self, delay: float, max_delay: float, lock_after: int, lock_seconds: float,
                 clock: Clock = time.monotonic, by_address: Events | None = None,
                 by_account: Events | None = None) -> None:
        self.delay = delay
        self.max_delay = max_delay
        self.lock_after = lock_after
        self.lock_seconds = lock_seconds
        self._clock = clock
        depths = self.depths(delay, max_delay, lock_after)
        self._by_address = by_address if by_address is not None else LocalEvents(depths[0])
        self._by_account = by_account if by_account is not None else LocalEvents(depths[1])

    @staticmethod
    def depths(delay: float, max_delay: float, lock_after: int) -> tuple[int, int]:
        """Failures worth keeping per address (beyond them the delay is capped) and per account."""
        per_address = math.ceil(max_delay / delay) if delay > 0 else 1
        return min(max(1, per_address), 1024), max(1, lock_after)

    def _since(self) -> float:
        return self._clock() - self.lock_seconds

    def delay_for(self, address: str) -> float:
        return min(self.delay * self._by_address.recent(address, self._since()), self.max_delay)

    def locked(self, account: str) -> bool:
        return self.lock_after > 0 and self._by_account.recent(account, self._since()) >= self.lock_after

    def failure(self, address: str, account: str | None) -> None:
        """A failed login from ``address``; ``account`` only if it exists.

        Names that are not accounts are not remembered: anyone could send
        thousands of them, and they would crowd real accounts' records out.
        """
        now = self._clock()
        self._by_address.add(address, now)
        if account is not None:
            self._by_account.add(account, now)

    def success(self, address: str, account: str) -> None:
        self._by_address.clear(address)
        self._by_account.clear(account)


# The key under which ConnectionLimits counts every connection.
ALL_CONNECTIONS = ""


class ConnectionLimits:
    """At most ``total`` open connections, and ``per_address`` from one address."""

    def __init__(self, total: int, per_address: int, counts: Counts | None = None) -> None:
        self.total = total
        self.per_address = per_address
        self._counts = counts if counts is not None else LocalCounts()

    def admit(self, address: str) -> str | None:
        """Count a new connection; the reason to refuse it, or None if admitted."""
        if not self._counts.take(ALL_CONNECTIONS, self.total):
            return "too many connections"
        if not self._counts.take(f"address:{address}", self.per_address):
            self._counts.give_back(ALL_CONNECTIONS)
            return "too many connections from your address"
        return None

    def release(self, address: str) -> None:
        """An admitted connection closed."""
        self._counts.give_back(f"address:{address}")
        self._counts.give_back(ALL_CONNECTIONS)


@dataclass
class Guards:
    """The guards one server process uses; shared ones are made before the workers fork."""

    connections: ConnectionLimits
    post_rate: RateLimiter
    logins: LoginThrottle

    @classmethod
    def local(cls, settings: Settings) -> Guards:
        """Guards whose counts this process keeps to itself (one server process)."""
        server, auth = settings.server, settings.auth
        return cls(
            connections=ConnectionLimits(server.max_connections, server.max_connections_per_address),
            post_rate=RateLimiter(server.posts_per_minute),
            logins=LoginThrottle(auth.failure_delay, auth.max_failure_delay,
                                 auth.lockout_failures, auth.lockout_seconds),
        )
