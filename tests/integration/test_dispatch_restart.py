"""Retry state survives a dispatcher restart; the forgery guard holds without the setting."""

from __future__ import annotations

import orjson
import pytest
from aiokafka import TopicPartition

from runtime.kafka import admin_client
from runtime.settings import Settings
from schemas.topics import ROUTED_EVENTS
from tests.integration.support.dispatch_harness import (
    all_finished,
    produce_routed,
    publish_trigger,
    routed_event,
    start_dispatcher,
    stop_dispatcher,
    target_server,
)
from tests.integration.support.polling import eventually

pytestmark = pytest.mark.integration


async def committed_retry_attempts(settings: Settings) -> int | None:
    """The highest attempt count recorded in the dispatchers group's commit metadata."""
    admin = admin_client(settings)
    await admin.start()
    try:
        topic = ROUTED_EVENTS.name(settings.topics.prefix)
        partitions = [TopicPartition(topic, p) for p in range(6)]
        found = await admin.list_consumer_group_offsets(
            settings.group("dispatchers"), partitions=partitions
        )
    finally:
        await admin.close()
    attempts = [
        state[0]
        for meta in found.values()
        if meta.metadata
        for state in orjson.loads(meta.metadata).get("r", {}).values()
    ]
    return max(attempts) if attempts else None


async def test_attempts_continue_after_a_restart_instead_of_starting_over(
    settings: Settings,
) -> None:
    async with target_server() as target:
        # Always 429 with Retry-After: 2, so every retry is due two seconds after the last try.
        trigger = await publish_trigger(settings, ref=target.url("/throttled"), max_attempts=4)
        event = routed_event(trigger, "conv", 0, target.url("/throttled"))
        await produce_routed(settings, [event])
        first = start_dispatcher(settings)
        try:
            # Killed once the first attempt's retry state is committed, well before it is due.
            assert await eventually(lambda: committed_retry_attempts(settings), 30) == 1
        finally:
            first.kill()
            first.wait()
        assert len(target.received) == 1
        second = start_dispatcher(settings)
        try:
            found = await all_finished(settings, {event.id})
        finally:
            assert stop_dispatcher(second) == 0

    steps = [(e.outcome, e.attempt) for e in found[event.id] if e.stage == "dispatcher"]
    assert steps == [
        ("retrying", 1),
        ("retrying", 2),
        ("retrying", 3),
        ("failed", 4),
        ("dead_lettered", 4),
    ]
    # Four requests in all: the restart neither reset the count nor retried before it was due.
    assert len(target.received) == 4
    assert target.received[1].at - target.received[0].at >= 1.9


async def test_private_targets_are_refused_without_the_setting(settings: Settings) -> None:
    async with target_server() as target:
        trigger = await publish_trigger(settings, ref=target.url("/ok"))
        literal = routed_event(trigger, "a", 0, target.url("/ok"))
        by_name = routed_event(trigger, "b", 0, f"http://localhost:{target.port}/ok")
        await produce_routed(settings, [literal, by_name])
        process = start_dispatcher(settings, TRIGGERLINE_DISPATCHER_ALLOW_PRIVATE_TARGETS="false")
        try:
            found = await all_finished(settings, {literal.id, by_name.id})
        finally:
            assert stop_dispatcher(process) == 0
    assert target.received == []
    for event in (literal, by_name):
        final = found[event.id][-1]
        assert final.outcome == "dead_lettered"
        assert final.attempt == 1
    assert "not public" in (found[literal.id][-1].error or "")
    assert "non-public" in (found[by_name.id][-1].error or "")
