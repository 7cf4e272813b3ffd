"""The guards' stores without a network: per-process ones and shared-memory ones behave alike,
and a shared one is one table for every process forked after it was made (serve --workers N)."""

from __future__ import annotations

import os

import pytest

from nntpd.guards import ConnectionLimits, LocalCounts, LocalEvents, LoginThrottle, RateLimiter
from nntpd.shared_guards import PROBE, SharedCounts, SharedEvents

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="shared guards are for forked workers")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "shared"])
def events(request):
    return LocalEvents if request.param == "local" else SharedEvents


@pytest.fixture(params=["local", "shared"])
def counts(request):
    return LocalCounts() if request.param == "local" else SharedCounts(100)


def test_rate_limit_is_a_sliding_window(events):
    clock = Clock()
    limiter = RateLimiter(3, window=60.0, clock=clock, events=events(RateLimiter.depth_for(3)))
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b"), "another key has its own count"
    clock.now += 59.0
    assert not limiter.allow("a")
    clock.now += 1.5  # the first three are now more than a minute old
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_only_the_newest_events_are_kept(events):
    store = events(3)
    for at in (1.0, 2.0, 3.0, 4.0, 5.0):
        store.add("k", at)
    assert store.recent("k", 0.0) == 3
    assert store.recent("k", 3.5) == 2
    store.clear("k")
    assert store.recent("k", 0.0) == 0


def throttle_on(events, clock, lock_after=3, lock_any_after=0, delay=1.0, max_delay=2.5):
    depths = LoginThrottle.depths(delay, max_delay, lock_after, lock_any_after)
    return LoginThrottle(delay, max_delay, lock_after, 900.0, clock=clock,
                         by_address=events(depths[0]), by_pair=events(depths[1]),
                         by_account=events(depths[2]), lock_any_after=lock_any_after)


def test_take_counts_and_refuses_past_the_limit(events):
    """Issue 13: the budget is taken in one step: at most ``limit`` events within the window."""
    store = events(4)
    assert [store.take("k", at, 0.0, 3) for at in (1.0, 2.0, 3.0, 4.0)] == [True, True, True, False]
    assert store.recent("k", 0.0) == 3, "a refused take adds nothing"
    assert store.take("k", 5.0, 1.5, 3), "the event at 1.0 left the window"
    assert not store.take("other", 1.0, 0.0, 0), "a limit of 0 refuses"
    assert store.recent("other", 0.0) == 0


def test_discard_forgets_exactly_one_event(events):
    """Issue 13: a successful login takes back its own attempt and nothing else."""
    store = events(4)
    for at in (1.0, 2.0, 3.0):
        store.add("k", at)
    store.discard("k", 2.0)
    store.discard("k", 9.0)  # not there: nothing happens
    store.discard("nobody", 1.0)
    assert store.recent("k", 0.0) == 2
    assert not store.take("k", 4.0, 0.0, 2), "1.0 and 3.0 are kept"
    store.discard("k", 1.0)
    store.discard("k", 3.0)
    assert store.recent("k", 0.0) == 0
    assert store.take("k", 5.0, 0.0, 1)


def test_login_delay_per_address_and_lock_per_account_and_address(events):
    """Issue 13: attempts count when they start; the lock is per account and address."""
    clock = Clock()
    throttle = throttle_on(events, clock)
    attempts = [throttle.begin("10.0.0.1") for _ in range(4)]
    assert [a.delay for a in attempts] == [0, 1.0, 2.0, 2.5], "each waits for those before it, capped"
    assert [throttle.admit(a, "alice") for a in attempts] == [True, True, True, False]
    assert throttle.admit(throttle.begin("10.0.0.2"), "alice"), "the owner elsewhere is not locked out"
    assert throttle.admit(throttle.begin("10.0.0.1"), "bob")
    clock.now += 901
    assert throttle.begin("10.0.0.1").delay == 0
    assert throttle.admit(throttle.begin("10.0.0.1"), "alice"), "the lock ends"


def test_lock_from_any_address(events):
    """Issue 13: lockout_failures_any_address bounds an attack spread over many addresses."""
    throttle = throttle_on(events, Clock(), lock_after=3, lock_any_after=5)
    admitted = [throttle.admit(throttle.begin(f"10.0.0.{n}"), "alice") for n in range(1, 5) for _ in range(2)]
    assert admitted == [True] * 5 + [False] * 3
    assert not throttle.admit(throttle.begin("10.0.0.9"), "alice"), "locked from everywhere"
    assert throttle.admit(throttle.begin("10.0.0.9"), "bob")


def test_success_takes_back_only_its_own_attempt(events):
    """Issue 13: a successful login must not reset its address's record; it clears the
    account's failures from that address and does not count itself."""
    clock = Clock()
    throttle = throttle_on(events, clock, lock_after=3, lock_any_after=10)
    for _ in range(2):
        throttle.admit(throttle.begin("10.0.0.1"), "mallory-target")
    ok = throttle.begin("10.0.0.1")
    assert ok.delay == 2.0
    assert throttle.admit(ok, "mallory")
    throttle.success(ok)
    assert throttle.begin("10.0.0.1").delay == 2.0, "the two failures still count, the success does not"
    for _ in range(3):
        assert throttle.admit(throttle.begin("10.0.0.1"), "mallory"), "the pair was cleared"


def test_connection_limits_total_and_per_address(counts):
    limits = ConnectionLimits(total=3, per_address=2, counts=counts)
    assert limits.admit("a") is None and limits.admit("a") is None
    assert limits.admit("a") == "too many connections from your address"
    assert limits.admit("b") is None
    assert limits.admit("c") == "too many connections"
    limits.release("a")
    assert limits.admit("c") is None, "a closed connection frees its place"
    assert ConnectionLimits(0, 10, counts).admit("d") == "too many connections"


@needs_fork
def test_shared_events_are_one_table_across_a_fork():
    store = SharedEvents(4)
    store.add("k", 1.0)
    pid = os.fork()
    if pid == 0:
        store.add("k", 2.0)
        store.add("other", 2.0)
        os._exit(0)
    os.waitpid(pid, 0)
    assert store.recent("k", 0.0) == 2
    assert store.recent("other", 0.0) == 1


@needs_fork
def test_shared_take_never_overdraws_across_processes():
    """Issue 13: workers taking from one login budget at once take at most its limit in all."""
    store = SharedEvents(64)
    pid = os.fork()
    if pid == 0:
        os._exit(sum(store.take("k", float(i), 0.0, 50) for i in range(1, 2001)))
    mine = sum(store.take("k", i + 0.5, 0.0, 50) for i in range(1, 2001))
    _, status = os.waitpid(pid, 0)
    assert mine + os.waitstatus_to_exitcode(status) == 50


@needs_fork
def test_shared_counts_do_not_lose_concurrent_updates():
    """Both processes count at once; the lock keeps every increment."""
    store = SharedCounts(10)
    rounds = 3000
    pid = os.fork()
    if pid == 0:
        for _ in range(rounds):
            store.take("k", 10**9)
        os._exit(0)
    for _ in range(rounds):
        store.take("k", 10**9)
    os.waitpid(pid, 0)
    assert not store.take("k", 2 * rounds)
    assert store.take("k", 2 * rounds + 1)


def test_a_full_probe_range_drops_the_key_idle_longest():
    store = SharedEvents(1, slots=PROBE)  # every key's probe range is the whole table
    for n in range(PROBE):
        store.add(f"k{n}", float(n + 1))
    store.add("new", 100.0)
    assert store.recent("new", 0.0) == 1
    assert store.recent("k0", 0.0) == 0, "the stalest key made room"
    assert all(store.recent(f"k{n}", 0.0) == 1 for n in range(1, PROBE))


def test_counts_refuse_a_key_when_its_probe_range_is_full():
    store = SharedCounts(1)  # the smallest table: PROBE slots
    assert all(store.take(f"k{n}", 5) for n in range(PROBE))
    assert not store.take("one-too-many", 5)
    store.give_back("k0")
    assert store.take("one-too-many", 5)


def test_counts_of_a_worker_that_is_gone_are_forgotten():
    """Each process counts in its own column; the parent drops a dead worker's column."""
    store = SharedCounts(10, workers=2)
    limits = ConnectionLimits(total=100, per_address=4, counts=store)
    assert limits.admit("a") is None and limits.admit("a") is None  # worker 0
    store.worker = 1
    assert limits.admit("a") is None and limits.admit("a") is None
    assert limits.admit("a") == "too many connections from your address"
    store.forget(1)  # worker 1 died: its two connections closed with it
    store.worker = 0
    assert limits.admit("a") is None and limits.admit("a") is None
    assert limits.admit("a") == "too many connections from your address"
    for _ in range(4):
        limits.release("a")
    assert store.take("address:a", 1), "the slot emptied when the last count went"
