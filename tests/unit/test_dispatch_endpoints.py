"""The per-endpoint in-flight cap: its table holds only endpoints with deliveries in progress."""

from __future__ import annotations

import asyncio

import pytest

from dispatchers.endpoints import EndpointSlots

pytestmark = pytest.mark.unit


async def test_an_endpoint_takes_at_most_its_slots_and_leaves_the_table_when_idle() -> None:
    slots = EndpointSlots(per_endpoint=2)
    release = asyncio.Event()
    full = asyncio.Event()
    inside = 0
    most_inside = 0

    async def deliver() -> None:
        nonlocal inside, most_inside
        async with slots.hold("http:https://a.example:443"):
            inside += 1
            most_inside = max(most_inside, inside)
            if inside == 2:
                full.set()
            await release.wait()
            inside -= 1

    deliveries = [asyncio.create_task(deliver()) for _ in range(5)]
    await full.wait()
    assert len(slots) == 1
    release.set()
    await asyncio.gather(*deliveries)
    assert most_inside == 2
    assert len(slots) == 0


async def test_a_cancelled_wait_leaves_no_entry_behind() -> None:
    slots = EndpointSlots(per_endpoint=1)
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold_slot() -> None:
        async with slots.hold("kafka:orders"):
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_slot())
    await held.wait()

    async def wait_for_slot() -> None:
        async with slots.hold("kafka:orders"):
            pass

    waiter = asyncio.create_task(wait_for_slot())
    await asyncio.sleep(0)  # one turn of the loop: the waiter now waits for the slot
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    release.set()
    await holder
    assert len(slots) == 0
