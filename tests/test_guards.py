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


def test_login_delay_per_address_and_lock_per_account(events):
    clock = Clock()
    by_address, by_account = LoginThrottle.depths(1.0, 2.5, 3)
    throttle = LoginThrottle(1.0, 2.5, 3, 900.0, clock=clock, by_address=events(by_address),
                             by_account=events(by_account))
    for _ in range(3):
        throttle.failure("10.0.0.1", "alice")
    assert throttle.delay_for("10.0.0.1") == 2.5, "capped at max_delay"
    assert throttle.delay_for("10.0.0.2") == 0
    assert throttle.locked("alice") and not throttle.locked("bob")
    clock.now += 901
    assert not throttle.locked("alice") and throttle.delay_for("10.0.0.1") == 0
    throttle.failure("10.0.0.1", "alice")
    throttle.success("10.0.0.1", "alice")
    assert throttle.delay_for("10.0.0.1") == 0


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
