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
    from .config import AuthSettings, Settings

Clock = Callable[[], float]


class Events(Protocol):
    """The most recent event times per key (at most ``depth`` of them are kept)."""

    depth: int

    def recent(self, key: str, since: float) -> int:
        """How many of the key's kept events are later than ``since``."""

    def add(self, key: str, at: float) -> None: ...

    def take(self, key: str, at: float, since: float, limit: int) -> bool:
        """Add an event at ``at`` unless ``limit`` kept events are later than ``since``;
        True if added. One step, so parallel callers (other workers too) cannot overdraw."""

    def discard(self, key: str, at: float) -> None:
        """Forget one event of the key at exactly ``at`` (an attempt that is not held against it)."""

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

    def take(self, key: str, at: float, since: float, limit: int) -> bool:
        if self.recent(key, since) >= limit:
            return False
        self.add(key, at)
        return True

    def discard(self, key: str, at: float) -> None:
        events = self._events.get(key)
        if events is not None and at in events:
            events.remove(at)
            if not events:
                del self._events[key]

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


@dataclass
class LoginAttempt:
    """One login attempt as the throttle counted it, so a success can take back its own events."""

    address: str
    at: float
    delay: float = 0.0  # seconds owed for the address's earlier attempts
    account: str | None = None  # set once the account's budgets gave it a slot
    slot_at: float = 0.0


class LoginThrottle:
    """Login attempts are counted when they start, before the password check.

    Counting only finished failures let parallel guesses all pass the check
    before the first was counted (issue 13). Three records, all within
    ``lock_seconds``:

    - per address: each recent attempt adds ``delay`` seconds (at most ``max_delay``);
    - per account and address: ``lock_after`` attempts, then refused, so one
      attacker locks an account only for their own address, not for its owner;
    - per account from any address: ``lock_any_after`` attempts (0 = off), the
      bound on a guessing attack spread over many addresses; such an attack
      locks the owner out too, which is the price of the bound.
    """

    def __init__(self, delay: float, max_delay: float, lock_after: int, lock_seconds: float,
                 clock: Clock = time.monotonic, by_address: Events | None = None,
                 by_pair: Events | None = None, by_account: Events | None = None,
                 lock_any_after: int = 0) -> None:
        self.delay = delay
        self.max_delay = max_delay
        self.lock_after = lock_after
        self.lock_any_after = lock_any_after
        self.lock_seconds = lock_seconds
        self._clock = clock
        depths = self.depths(delay, max_delay, lock_after, lock_any_after)
        self._by_address = by_address if by_address is not None else LocalEvents(depths[0])
        self._by_pair = by_pair if by_pair is not None else LocalEvents(depths[1])
        self._by_account = by_account if by_account is not None else LocalEvents(depths[2])

    @staticmethod
    def depths(delay: float, max_delay: float, lock_after: int,
               lock_any_after: int = 0) -> tuple[int, int, int]:
        """Attempts worth keeping per address (beyond them the delay is capped),
        per account and address, and per account."""
        per_address = math.ceil(max_delay / delay) if delay > 0 else 1
        return min(max(1, per_address), 1024), max(1, lock_after), max(1, lock_any_after)

    @staticmethod
    def _pair(account: str, address: str) -> str:
        return f"{account}\n{address}"

    def begin(self, address: str) -> LoginAttempt:
        """Count an attempt from ``address`` now; its delay comes from the attempts before it,
        so parallel attempts from one address wait one after another's share."""
        now = self._clock()
        earlier = self._by_address.recent(address, now - self.lock_seconds)
        self._by_address.add(address, now)
        return LoginAttempt(address, now, min(self.delay * earlier, self.max_delay))

    def admit(self, attempt: LoginAttempt, account: str) -> bool:
        """Take a slot for ``account`` from both budgets; False when either is spent (locked).

        Only names that are accounts are counted: anyone could send thousands
        of others, and they would crowd real accounts' records out. A refused
        attempt takes nothing, so hammering a lock does not prolong it.
        """
        now = self._clock()
        since = now - self.lock_seconds
        pair = self._pair(account, attempt.address)
        if self.lock_after > 0 and not self._by_pair.take(pair, now, since, self.lock_after):
            return False
        if self.lock_any_after > 0 and not self._by_account.take(account, now, since,
                                                                 self.lock_any_after):
            self._by_pair.discard(pair, now)
            return False
        attempt.account, attempt.slot_at = account, now
        return True

    def success(self, attempt: LoginAttempt) -> None:
        """Take back only this attempt's events: the address keeps its record, so
        logging into one's own account does not clear the delay earned guessing at others.
        The account's failures from this address go (its owner knows the password)."""
        self._by_address.discard(attempt.address, attempt.at)
        if attempt.account is not None:
            self._by_pair.clear(self._pair(attempt.account, attempt.address))
            self._by_account.discard(attempt.account, attempt.slot_at)

    @classmethod
    def from_settings(cls, auth: AuthSettings, store: Callable[[int], Events] = LocalEvents
                      ) -> LoginThrottle:
        """The throttle [auth] describes, its records made by ``store(depth)``."""
        depths = cls.depths(auth.failure_delay, auth.max_failure_delay, auth.lockout_failures,
                            auth.lockout_failures_any_address)
        return cls(auth.failure_delay, auth.max_failure_delay, auth.lockout_failures,
                   auth.lockout_seconds, by_address=store(depths[0]), by_pair=store(depths[1]),
                   by_account=store(depths[2]), lock_any_after=auth.lockout_failures_any_address)


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
            logins=LoginThrottle.from_settings(auth),
        )
