"""The per-endpoint circuit breaker: open after N failures, one probe when half-open."""

from __future__ import annotations

import asyncio

import pytest

from dispatchers.circuit import CircuitBreaker, CircuitBreakers

pytestmark = pytest.mark.unit


def state(breaker: CircuitBreaker) -> str:
    # A call, so that the type checker does not carry a narrowed state across awaits.
    return breaker.state


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_opens_after_consecutive_failures_and_probes_once() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("http", threshold=3, cooldown_s=10.0, clock=clock)
    for _ in range(2):
        await breaker.admit()
        await breaker.record(success=False)
    assert state(breaker) == "closed"
    await breaker.admit()
    await breaker.record(success=False)
    assert state(breaker) == "open"

    # While open, nobody gets through.
    waiting = asyncio.create_task(breaker.admit())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    waiting.cancel()

    clock.now = 10.0
    await breaker.admit()
    assert state(breaker) == "half_open"
    second = asyncio.create_task(breaker.admit())
    await asyncio.sleep(0.05)
    assert not second.done(), "only one probe while half-open"
    await breaker.record(success=True)
    await asyncio.wait_for(second, 1)
    assert state(breaker) == "closed"


async def test_a_failed_probe_opens_again() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("http", threshold=1, cooldown_s=5.0, clock=clock)
    await breaker.admit()
    await breaker.record(success=False)
    clock.now = 5.0
    await breaker.admit()
    await breaker.record(success=False)
    assert state(breaker) == "open"


def test_endpoints_have_their_own_breakers() -> None:
    breakers = CircuitBreakers(threshold=1, cooldown_s=1.0)
    a = breakers.for_endpoint("http", "https://a.example")
    assert breakers.for_endpoint("http", "https://a.example") is a
    assert breakers.for_endpoint("http", "https://b.example") is not a
