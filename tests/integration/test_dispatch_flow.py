"""Dispatcher flow control: kafka targets, backpressure, and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from aiokafka.admin import NewTopic

from runtime.kafka import admin_client
from runtime.settings import Settings
from schemas.topics import ROUTED_EVENTS
from tests.integration.support.dispatch_harness import (
    all_finished,
    finished,
    journeys,
    produce_routed,
    publish_trigger,
    requests_reach,
    routed_event,
    start_dispatcher,
    stop_dispatcher,
    target_server,
)
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port
from tests.integration.support.topic_reader import read_until

pytestmark = pytest.mark.integration


async def metric(port: int, name: str) -> float | None:
    async with httpx.AsyncClient() as client:
        try:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)).text
        except httpx.HTTPError:
            return None
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def test_kafka_target_receives_the_cloudevent(settings: Settings) -> None:
    # Outside the deployment's prefix, which kafka targets may not write; deleted afterwards.
    out_topic = f"{settings.topics.prefix}-customer-out"
    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(out_topic, num_partitions=2, replication_factor=1)])
        trigger = await publish_trigger(settings, kind="kafka", ref=out_topic)
        events = [routed_event(trigger, f"k{n}", n, out_topic) for n in range(5)]
        await produce_routed(settings, events)
        process = start_dispatcher(settings)
        try:
            found = await all_finished(settings, {e.id for e in events})
            delivered = await read_until(settings, out_topic, lambda seen: len(seen) >= 5)
        finally:
            assert stop_dispatcher(process) == 0
    finally:
        await admin.delete_topics([out_topic])
        await admin.close()
    assert all(found[e.id][-1].outcome == "delivered" for e in events)
    assert sorted(ROUTED_EVENTS.decode(v).id for _, v in delivered) == sorted(e.id for e in events)
    assert {k for k, _ in delivered} == {f"k{n}".encode() for n in range(5)}


async def test_a_stuck_key_pauses_its_partition_instead_of_growing_memory(
    settings: Settings,
) -> None:
    async with target_server() as target:
        trigger = await publish_trigger(settings, ref=target.url("/down"), max_attempts=1000)
        stuck = [routed_event(trigger, "stuck", n, target.url("/down")) for n in range(3000)]
        await produce_routed(settings, stuck)
        port = free_port()
        process = start_dispatcher(
            settings,
            TRIGGERLINE_DISPATCHER_METRICS_PORT=str(port),
            TRIGGERLINE_DISPATCHER_MAX_PENDING_PER_PARTITION="20",
        )
        try:

            async def paused() -> float | None:
                value = await metric(port, "triggerline_dispatcher_paused_partitions")
                return value if value else None

            assert await eventually(paused) == 1
            pending = await metric(port, "triggerline_dispatcher_pending")
            # The threshold plus at most one fetch (500 records), far below the 3,000 waiting.
            assert pending is not None
            assert 20 <= pending <= 520
            # Only the head of the stuck key was ever attempted.
            assert target.ids() == {stuck[0].id}
        finally:
            assert stop_dispatcher(process) == 0


async def test_sigterm_finishes_in_flight_work_and_commits_it(settings: Settings) -> None:
    async with target_server() as target:
        trigger = await publish_trigger(settings, ref=target.url("/hold"))
        held = [routed_event(trigger, f"held-{n}", 0, target.url("/hold")) for n in range(5)]
        await produce_routed(settings, held)
        process = start_dispatcher(settings)
        await requests_reach(target, 5, "/hold")
        # All five are in flight (each answer takes 1.5 s): stop now.
        assert await asyncio.to_thread(stop_dispatcher, process) == 0
        found = await journeys(settings)
        assert all(finished(found.get(e.id, [])) for e in held)

        # A successor starts after the committed offsets: nothing held is sent again.
        markers = [routed_event(trigger, f"m-{n}", 0, target.url("/ok")) for n in range(30)]
        await produce_routed(settings, markers)
        successor = start_dispatcher(settings)
        try:
            await all_finished(settings, {e.id for e in markers})
        finally:
            assert stop_dispatcher(successor) == 0
    assert len(target.calls("/hold")) == 5
