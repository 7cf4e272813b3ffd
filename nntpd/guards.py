"""Server-wide guards against abuse: post rate limits and failed-login throttling.

Plain classes with an injectable clock, owned by the server and shared by
its sessions (per process: several processes each keep their own counts).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Callable

Clock = Callable[[], float]


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (0 = unlimited)."""

    def __init__(self, limit: int, window: float = 60.0, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        if self.limit <= 0:
            return True
        now = self._clock()
        events = self._events[key]
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True


class LoginThrottle:
    """Delay per recent failure from an address; temporary lock of an account after many."""

    def __init__(self, delay: float, max_delay: float, lock_after: int, lock_seconds: float,
                 clock: Clock = time.monotonic) -> None:
        self.delay = delay
        self.max_delay = max_delay
        self.lock_after = lock_after
        self.lock_seconds = lock_seconds
        self._clock = clock
        self._by_address: dict[str, list[float]] = defaultdict(list)
        self._by_account: dict[str, list[float]] = defaultdict(list)

    def _recent(self, table: dict[str, list[float]], key: str) -> list[float]:
        cutoff = self._clock() - self.lock_seconds
        recent = [t for t in table.get(key, ()) if t > cutoff]
        if recent:
            table[key] = recent
        else:
            table.pop(key, None)
        return recent

    def delay_for(self, address: str) -> float:
        return min(self.delay * len(self._recent(self._by_address, address)), self.max_delay)

    def locked(self, account: str) -> bool:
        return self.lock_after > 0 and len(self._recent(self._by_account, account)) >= self.lock_after

    def failure(self, address: str, account: str) -> None:
        now = self._clock()
        self._by_address[address].append(now)
        self._by_account[account].append(now)

    def success(self, address: str, account: str) -> None:
        self._by_address.pop(address, None)
        self._by_account.pop(account, None)
