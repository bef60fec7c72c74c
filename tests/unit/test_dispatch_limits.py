"""Outbound limits per destination: the token bucket on a fake clock, a limiter's rate, pauses
and concurrency cap on the real one, and the table of limiters' bound and retention."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest
from prometheus_client import REGISTRY

from dispatchers.limits import MAX_PAUSE_S, DestinationLimiter, DestinationLimits, TokenBucket
from schemas.triggers import RateLimit
from tests.unit.support.dispatch import policy

pytestmark = pytest.mark.unit

WAIT_S = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_a_burst_through_then_one_per_interval_in_order() -> None:
    clock = FakeClock()
    bucket = TokenBucket(RateLimit(per_second=10.0, burst=3), clock)
    assert bucket.full
    # Each caller reserves the next turn: waits grow one interval at a time, first come first.
    waits = [bucket.reserve() for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])
    assert not bucket.full


def test_tokens_flow_back_at_the_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(RateLimit(per_second=2.0, burst=2), clock)
    assert [bucket.reserve(), bucket.reserve()] == [0.0, 0.0]
    clock.now += 0.5  # one token back
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.5)
    clock.now += 60.0  # long idle: full again, but no more than the burst
    assert bucket.full
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])


def test_a_held_bucket_admits_nothing_before_the_end_then_starts_empty() -> None:
    clock = FakeClock()
    bucket = TokenBucket(RateLimit(per_second=4.0, burst=5), clock)
    bucket.hold_until(clock.now + 2.0)
    assert bucket.reserve() == pytest.approx(2.0)
    # After the hold, one token per interval rather than a burst of five.
    assert bucket.reserve() == pytest.approx(2.25)
    assert bucket.reserve() == pytest.approx(2.5)


async def test_a_rate_limited_destination_spaces_its_attempts() -> None:
    limiter = DestinationLimiter("http", policy(rate_limit=RateLimit(per_second=20.0, burst=1)))
    stopping = asyncio.Event()
    started = time.monotonic()
    times = []
    for _ in range(5):
        async with limiter.admitted(stopping) as admitted:
            assert admitted
            times.append(time.monotonic() - started)
    assert times[0] < 0.04
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.045 for gap in gaps), gaps
    assert wait_seconds("rate") > 0


async def test_a_pause_holds_back_the_whole_destination_and_leaves_the_gauge_after() -> None:
    before = paused_gauge()
    limiter = DestinationLimiter("http", policy())
    stopping = asyncio.Event()
    limiter.pause(0.3)
    limiter.pause(0.1)  # a shorter pause does not cut the longer one short
    assert limiter.paused
    assert paused_gauge() == before + 1
    started = time.monotonic()
    async with limiter.admitted(stopping) as admitted:
        assert admitted
        assert time.monotonic() - started >= 0.28
    await until(lambda: paused_gauge() == before)
    assert not limiter.paused


async def test_a_pause_is_bounded() -> None:
    clock = FakeClock()
    limiter = DestinationLimiter("http", policy(), clock)
    limiter.pause(10 * MAX_PAUSE_S)
    clock.now += MAX_PAUSE_S + 0.001
    assert not limiter.paused
    limiter.forget()


async def test_a_pause_that_starts_while_a_record_waits_for_its_token_holds_it_too() -> None:
    limiter = DestinationLimiter("http", policy(rate_limit=RateLimit(per_second=5.0, burst=1)))
    stopping = asyncio.Event()
    async with limiter.admitted(stopping):
        pass  # the bucket's one token is spent: the next waits 0.2 s
    started = time.monotonic()

    async def second() -> float:
        async with limiter.admitted(stopping) as admitted:
            assert admitted
            return time.monotonic() - started

    waiting = asyncio.create_task(second())
    await asyncio.sleep(0.05)
    limiter.pause(0.4)
    assert await asyncio.wait_for(waiting, WAIT_S) >= 0.43


async def test_at_most_max_concurrency_attempts_are_admitted_at_once() -> None:
    limiter = DestinationLimiter("http", policy(max_concurrency=2))
    stopping = asyncio.Event()
    async with AsyncExitStack() as held:
        assert await held.enter_async_context(limiter.admitted(stopping))
        assert await held.enter_async_context(limiter.admitted(stopping))

        async def third() -> bool:
            async with limiter.admitted(stopping) as admitted:
                return admitted

        waiting = asyncio.create_task(third())
        await asyncio.sleep(0.05)
        assert not waiting.done()
    assert await asyncio.wait_for(waiting, WAIT_S)


async def test_a_changed_cap_applies_to_attempts_admitted_after_the_change() -> None:
    limiter = DestinationLimiter("http", policy(max_concurrency=1))
    stopping = asyncio.Event()
    async with limiter.admitted(stopping):
        limiter.configure(policy(max_concurrency=2))
        async with limiter.admitted(stopping) as admitted:
            assert admitted
            async with AsyncExitStack() as held:
                assert await held.enter_async_context(limiter.admitted(stopping))
                blocked = asyncio.create_task(held.enter_async_context(limiter.admitted(stopping)))
                await asyncio.sleep(0.05)
                assert not blocked.done(), "two admitted under the new cap of two"
                blocked.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await blocked


async def test_a_record_waiting_for_its_turn_is_given_back_when_stopping() -> None:
    limiter = DestinationLimiter("http", policy(rate_limit=RateLimit(per_second=0.01, burst=1)))
    stopping = asyncio.Event()
    async with limiter.admitted(stopping):
        pass

    async def next_one() -> bool:
        async with limiter.admitted(stopping) as admitted:
            return admitted

    waiting = asyncio.create_task(next_one())
    await asyncio.sleep(0.02)
    stopping.set()
    assert await asyncio.wait_for(waiting, 1.0) is False


async def test_limiters_follow_a_changed_policy_and_idle_settled_ones_are_forgotten() -> None:
    clock = FakeClock()
    limits = DestinationLimits(max_destinations=10, idle_s=60.0, clock=clock)
    slow = policy("slow", rate_limit=RateLimit(per_second=1.0, burst=1))
    with limits.hold("http", "t-1", slow) as limiter:
        assert await admit_at_once(limiter)
        assert not limiter.settled, "its bucket is not full yet"
    with limits.hold("http", "t-1", policy("paused")) as paused:
        paused.pause(MAX_PAUSE_S)
    with limits.hold("http", "t-1", policy("slow")) as same:
        assert same is limiter
        # The rate limit was removed in a newer revision: nothing holds the next one back.
        assert await admit_at_once(same)
    clock.now += 61.0
    with limits.hold("http", "t-2", policy("other")):
        pass
    assert ("t-1", "slow") not in limits
    assert ("t-1", "paused") in limits, "a paused destination's limiter outlives the retention"
    assert len(limits) == 2
    paused.forget()


async def test_the_bound_forgets_settled_limiters_first_and_held_ones_never() -> None:
    clock = FakeClock()
    limits = DestinationLimits(max_destinations=2, idle_s=3600.0, clock=clock)
    with limits.hold("http", "t-1", policy("paused")) as paused:
        paused.pause(MAX_PAUSE_S)
    clock.now += 1
    with limits.hold("http", "t-1", policy("held")):
        clock.now += 1
        with limits.hold("http", "t-1", policy("a")):
            pass
        # Over the bound while one is held: no settled one is free to go, so the paused one
        # goes; the held one never does.
        assert ("t-1", "held") in limits
        assert ("t-1", "paused") not in limits
        clock.now += 1
        with limits.hold("http", "t-1", policy("b")):
            pass
        assert ("t-1", "a") not in limits
        assert ("t-1", "held") in limits


async def admit_at_once(limiter: DestinationLimiter) -> bool:
    async with limiter.admitted(asyncio.Event()) as admitted:
        return admitted


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def paused_gauge() -> float:
    return REGISTRY.get_sample_value("triggerline_dispatcher_paused_destinations") or 0.0


def wait_seconds(limit: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "triggerline_dispatcher_limit_wait_seconds_total",
            {"target_kind": "http", "limit": limit},
        )
        or 0.0
    )
