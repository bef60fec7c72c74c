"""Fan-out on the real broker: a worker SIGKILLed while it routes events to three destinations
leaves each destination's routed record exactly once, with that destination's transform."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest

from runtime.settings import Settings
from schemas.triggers import Destination, Target
from tests.integration.support.polling import eventually
from tests.integration.support.processor_outputs import (
    all_routed,
    processor_decisions,
    routed_events,
)
from tests.integration.support.processor_records import (
    Records,
    produce_steadily,
    slack_trigger,
    triggers_on_every_partition,
)
from tests.integration.support.processor_workers import SHORT_SESSION, processor_workers

pytestmark = pytest.mark.integration

DESTINATIONS = (
    Destination("bot", Target("noop")),
    Destination("audit", Target("noop"), transform='{"said": event.text, "by": event.user_id}'),
    Destination("greetings", Target("noop"), filter='event.text == "hello"'),
)


async def test_a_killed_worker_routes_each_destination_exactly_once(settings: Settings) -> None:
    total = 1500
    async with Records(settings) as records:
        triggers = triggers_on_every_partition()
        for trigger_id in triggers:
            await records.config(slack_trigger(trigger_id, destinations=DESTINATIONS))
        with processor_workers(settings, 1, "batch", **SHORT_SESSION) as group:
            supervising = asyncio.create_task(group.supervise())
            producing = asyncio.create_task(produce_steadily(records, triggers, total, resends=5))

            async def some_routed() -> int | None:
                routed = len(await routed_events(settings))
                return routed if routed >= 600 else None

            await eventually(some_routed, timeout_s=90)
            group.workers[0].process.kill()
            sent = await producing
            events = await all_routed(settings, len(DESTINATIONS) * total)
            supervising.cancel()

    assert group.exits == [-signal.SIGKILL]
    routed = Counter((e.id, e.destination) for e in events)
    assert [pair for pair, n in routed.items() if n > 1] == []
    names = [d.name for d in DESTINATIONS]
    assert set(routed) == {(event_id, name) for event_id in sent.events for name in names}
    audit = [e for e in events if e.destination == "audit"]
    assert {type(e.data) for e in audit} == {dict}
    assert all(e.data == {"said": "hello", "by": "U1"} for e in audit), audit[0].data
    # Every routed record has its step, and the steps name their destinations.
    decisions = await processor_decisions(settings)
    steps = Counter((d.event_id, d.destination) for d in decisions if d.outcome == "routed")
    assert steps == routed
