"""The per-destination circuit breaker: open after N failures, one probe when half-open."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

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


def table(
    clock: FakeClock, *, max_destinations: int = 100, idle_s: float = 60.0
) -> CircuitBreakers:
    return CircuitBreakers(
        threshold=1, cooldown_s=1.0, max_destinations=max_destinations, idle_s=idle_s, clock=clock
    )


def use(breakers: CircuitBreakers, destination: str) -> CircuitBreaker:
    with breakers.hold("http", "t-1", destination) as breaker:
        return breaker


async def open_circuit(breakers: CircuitBreakers, destination: str) -> None:
    with breakers.hold("http", "t-1", destination) as breaker:
        await breaker.admit()
        await breaker.record(success=False)
        assert state(breaker) == "open"


def test_destinations_have_their_own_breakers() -> None:
    breakers = table(FakeClock())
    a = use(breakers, "a")
    assert use(breakers, "a") is a
    assert use(breakers, "b") is not a
    # Keyed by trigger and destination name: another trigger's "a" is another destination.
    with breakers.hold("http", "t-2", "a") as elsewhere:
        assert elsewhere is not a


async def test_closed_circuits_idle_past_the_retention_are_forgotten() -> None:
    clock = FakeClock()
    breakers = table(clock, idle_s=60.0)
    use(breakers, "idle")
    await open_circuit(breakers, "down")
    clock.now = 30.0
    use(breakers, "recent")
    clock.now = 61.0
    use(breakers, "new")
    assert ("t-1", "idle") not in breakers
    # An open circuit stays, however long unused, while the bound leaves room.
    assert ("t-1", "down") in breakers
    assert ("t-1", "recent") in breakers
    assert len(breakers) == 3


async def test_the_bound_forgets_least_recently_used_closed_circuits_first() -> None:
    clock = FakeClock()
    breakers = table(clock, max_destinations=3)
    await open_circuit(breakers, "down")
    clock.now = 1.0
    use(breakers, "a")
    clock.now = 2.0
    use(breakers, "b")
    clock.now = 3.0
    use(breakers, "a")  # now b is the least recently used
    clock.now = 4.0
    use(breakers, "c")
    assert len(breakers) == 3
    assert ("t-1", "b") not in breakers
    assert ("t-1", "down") in breakers, "older, but open"


async def test_an_open_circuit_goes_only_when_the_bound_leaves_nothing_else() -> None:
    clock = FakeClock()
    breakers = table(clock, max_destinations=2)
    await open_circuit(breakers, "down-1")
    clock.now = 1.0
    await open_circuit(breakers, "down-2")
    clock.now = 2.0
    use(breakers, "new")
    assert len(breakers) == 2
    assert ("t-1", "down-1") not in breakers
    assert ("t-1", "down-2") in breakers


async def test_a_circuit_held_by_a_delivery_is_never_forgotten() -> None:
    clock = FakeClock()
    breakers = table(clock, max_destinations=1, idle_s=1.0)
    with breakers.hold("http", "t-1", "held") as held:
        clock.now = 100.0
        other = use(breakers, "other")
        # Past the bound while held: the held one stays, the delivery reports to it.
        assert ("t-1", "held") in breakers
        assert len(breakers) == 2
        await held.admit()
        await held.record(success=False)
        assert use(breakers, "held") is held
        assert other is not held
    clock.now = 200.0
    use(breakers, "third")
    assert len(breakers) == 1


async def test_forgotten_circuits_leave_the_gauge() -> None:
    clock = FakeClock()
    before = {s: gauge(s) for s in ("closed", "open")}
    breakers = table(clock, max_destinations=2)
    await open_circuit(breakers, "down")
    use(breakers, "a")
    assert (gauge("closed"), gauge("open")) == (before["closed"] + 1, before["open"] + 1)
    use(breakers, "b")  # forgets a (closed)
    use(breakers, "c")  # forgets b; the open one stays
    assert (gauge("closed"), gauge("open")) == (before["closed"] + 1, before["open"] + 1)


def gauge(circuit_state: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "triggerline_dispatcher_circuits", {"target_kind": "http", "state": circuit_state}
        )
        or 0.0
    )
