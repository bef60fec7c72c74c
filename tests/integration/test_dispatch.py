"""Dispatchers against a real HTTP target, on real Kafka, run as real processes."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from runtime.settings import Settings
from schemas.topics import DEAD_LETTERS
from schemas.triggers import Target
from tests.integration.support.dispatch_harness import (
    DestinationSpec,
    Received,
    all_finished,
    all_settled,
    finished,
    produce_routed,
    publish_trigger,
    requests_reach,
    routed_event,
    start_dispatcher,
    stop_dispatcher,
    target_server,
)
from tests.integration.support.topic_reader import read_all

pytestmark = pytest.mark.integration


def first_receipts_in_order(received: list[Received]) -> dict[str, list[int]]:
    """Per subject, the sequence numbers in the order the target first saw each event."""
    seen: set[str] = set()
    order: dict[str, list[int]] = defaultdict(list)
    for r in received:
        if r.webhook_id not in seen:
            seen.add(r.webhook_id)
            order[r.subject].append(r.seq)
    return order


async def test_per_key_order_holds_under_concurrency(settings: Settings) -> None:
    async with target_server() as target:
        trigger = await publish_trigger(settings, ref=target.url("/slow"))
        keys, per_key = 20, 10
        events = [
            routed_event(trigger, f"conv-{k}", seq, target.url("/slow"))
            for seq in range(per_key)
            for k in range(keys)
        ]
        await produce_routed(settings, events)
        process = start_dispatcher(settings)
        try:
            found = await all_finished(settings, {e.id for e in events})
        finally:
            assert stop_dispatcher(process) == 0

    assert target.bad_signatures == 0
    assert all(found[e.id][-1].outcome == "delivered" for e in events)
    order = first_receipts_in_order(target.received)
    assert order == {f"conv-{k}": list(range(per_key)) for k in range(keys)}
    # Concurrency across keys: the slow target's requests overlapped, so 200 deliveries with
    # up to 30 ms each took far less than they would one after another.
    span = target.received[-1].at - target.received[0].at
    assert span < 200 * 0.015


async def test_retries_retry_after_and_dead_letters(settings: Settings) -> None:
    async with target_server() as target:
        trigger = await publish_trigger(settings, ref=target.url("/ok"), max_attempts=3)
        twice = routed_event(trigger, "a", 0, target.url("/fail-twice"))
        busy = routed_event(trigger, "b", 0, target.url("/busy"))
        gone = routed_event(trigger, "c", 0, target.url("/gone"))
        down = routed_event(trigger, "d", 0, target.url("/down"))
        events = [twice, busy, gone, down]
        await produce_routed(settings, events)
        process = start_dispatcher(settings, TRIGGERLINE_DISPATCHER_CIRCUIT_FAILURES="50")
        try:
            found = await all_finished(settings, {e.id for e in events})
        finally:
            assert stop_dispatcher(process) == 0

    def steps(event_id: str) -> list[tuple[str, int]]:
        return [(e.outcome, e.attempt) for e in found[event_id] if e.stage == "dispatcher"]

    assert steps(twice.id) == [("retrying", 1), ("retrying", 2), ("delivered", 3)]
    assert steps(busy.id) == [("retrying", 1), ("delivered", 2)]
    busy_calls = target.calls("/busy")
    assert busy_calls[1].at - busy_calls[0].at >= 0.95, "Retry-After: 1 was not honoured"
    assert steps(gone.id) == [("failed", 1), ("dead_lettered", 1)]
    assert len(target.calls("/gone")) == 1
    assert steps(down.id) == [("retrying", 1), ("retrying", 2), ("failed", 3), ("dead_lettered", 3)]
    assert found[gone.id][-1].reason == "rejected by target"
    assert found[down.id][0].http_status == 503

    letters = [
        DEAD_LETTERS.decode(v)
        for _, v in await read_all(settings, DEAD_LETTERS.name(settings.topics.prefix))
    ]
    by_event = {letter.event_id: letter for letter in letters}
    assert set(by_event) == {gone.id, down.id}
    assert [a["http_status"] for a in by_event[down.id].attempts] == [503, 503, 503]
    assert "410" in (by_event[gone.id].error or "")


async def test_an_open_circuit_holds_records_without_spending_attempts(settings: Settings) -> None:
    # One server, one trigger, two destinations: circuits are per destination, not per endpoint.
    async with target_server() as server:
        trigger = await publish_trigger(
            settings,
            destinations=[
                DestinationSpec("broken", Target("http", server.url("/down"), max_attempts=4)),
                DestinationSpec("fine", Target("http", server.url("/ok"), max_attempts=4)),
            ],
        )
        failing = [
            routed_event(trigger, f"down-{k}", 0, server.url("/down"), "broken") for k in range(6)
        ]
        healthy = [
            routed_event(trigger, f"ok-{k}", 0, server.url("/ok"), "fine") for k in range(20)
        ]
        process = start_dispatcher(
            settings,
            TRIGGERLINE_DISPATCHER_CIRCUIT_FAILURES="3",
            TRIGGERLINE_DISPATCHER_CIRCUIT_COOLDOWN_S="60",
        )
        try:
            await produce_routed(settings, failing)
            await requests_reach(server, 3, "/down")
            await produce_routed(settings, healthy)
            found = await all_finished(settings, {e.id for e in healthy})
            await asyncio.sleep(1.0)  # several backoff periods (50-500 ms) for the failing ones
            # The circuit opened after the first wave; with a 60 s cool-down no record made a
            # second attempt, so none of them ran out of attempts.
            assert len(server.calls("/down")) <= len(failing)
            assert not any(finished(found.get(e.id, [])) for e in failing)
        finally:
            assert stop_dispatcher(process) == 0
    assert all(found[e.id][-1].outcome == "delivered" for e in healthy)
    steps = [step for e in healthy for step in found[e.id] if step.stage == "dispatcher"]
    assert {step.destination for step in steps} == {"fine"}


async def test_sigkill_mid_flight_loses_nothing_and_repeats_only_webhook_ids(
    settings: Settings,
) -> None:
    async with target_server() as target:
        trigger = await publish_trigger(settings, ref=target.url("/flaky"), max_attempts=4)
        events = [
            routed_event(trigger, f"conv-{k}", seq, target.url("/flaky"))
            for seq in range(10)
            for k in range(30)
        ]
        await produce_routed(settings, events)
        # A short cool-down: the flaky target trips the breaker now and then, which is not what
        # this test is about.
        quick_circuit = {"TRIGGERLINE_DISPATCHER_CIRCUIT_COOLDOWN_S": "0.2"}
        first = start_dispatcher(settings, **quick_circuit)
        try:
            await requests_reach(target, 80)
        finally:
            first.kill()
            first.wait()
        killed_after = len(target.received)
        second = start_dispatcher(settings, **quick_circuit)
        try:
            found = await all_settled(settings, {e.id for e in events})
        finally:
            assert stop_dispatcher(second) == 0

    assert killed_after < len(target.received), "the restarted dispatcher did work too"
    assert target.bad_signatures == 0
    sent = {e.id: e for e in events}
    outcomes = {found[e.id][-1].outcome for e in events}
    assert outcomes <= {"delivered", "dead_lettered"}
    # Every request the target saw belongs to a routed event, and a repeated webhook-id always
    # carries the same event: duplicates are recognisable as such.
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for r in target.received:
        assert r.webhook_id in sent
        bodies[r.webhook_id].add(r.body)
    assert all(len(b) == 1 for b in bodies.values())
    delivered = {e.id for e in events if found[e.id][-1].outcome == "delivered"}
    assert delivered <= target.ids()
    order = first_receipts_in_order(target.received)
    assert all(seqs == sorted(seqs) for seqs in order.values())


async def test_a_slow_endpoint_takes_only_its_share_of_the_slots(settings: Settings) -> None:
    # Two servers: the per-endpoint cap is per scheme, host and port.
    async with target_server() as slow, target_server() as fine:
        trigger = await publish_trigger(settings, ref=slow.url("/gate"))
        held = [routed_event(trigger, f"hold-{k}", 0, slow.url("/gate")) for k in range(12)]
        quick = [routed_event(trigger, f"ok-{k}", 0, fine.url("/ok")) for k in range(10)]
        process = start_dispatcher(
            settings,
            TRIGGERLINE_DISPATCHER_MAX_IN_FLIGHT="6",
            TRIGGERLINE_DISPATCHER_MAX_IN_FLIGHT_PER_ENDPOINT="3",
        )
        try:
            await produce_routed(settings, held)
            await requests_reach(slow, 3)
            # The slow endpoint answers nothing until the gate opens: every quick delivery must
            # find a slot among the three it does not hold.
            await produce_routed(settings, quick)
            await requests_reach(fine, len(quick))
            assert len(slow.received) == 3
            slow.gate.set()
            await all_finished(settings, {e.id for e in held + quick})
        finally:
            assert stop_dispatcher(process) == 0


async def test_delivery_log_and_dead_letters_show_target_urls_without_credentials(
    settings: Settings,
) -> None:
    async with target_server() as target:

        def with_credentials(path: str) -> str:
            # The real URL, credentials included: the target must still receive the request.
            base = target.url(path).replace("http://", "http://alice:pw-SECRET@")
            return f"{base}?token=tok-SECRET&sig=sig-SECRET#frag-SECRET"

        trigger = await publish_trigger(settings, ref=with_credentials("/ok"))
        delivered = routed_event(trigger, "a", 0, with_credentials("/ok"))
        rejected = routed_event(trigger, "b", 0, with_credentials("/gone"))
        await produce_routed(settings, [delivered, rejected])
        process = start_dispatcher(settings)
        try:
            found = await all_finished(settings, {delivered.id, rejected.id})
        finally:
            assert stop_dispatcher(process) == 0

    assert target.ids("/ok") == {delivered.id}
    assert target.ids("/gone") == {rejected.id}
    assert found[delivered.id][-1].outcome == "delivered"
    assert found[rejected.id][-1].outcome == "dead_lettered"
    shown = {
        f"http://redacted:redacted@127.0.0.1:{target.port}{path}"
        "?token=redacted&sig=redacted#redacted"
        for path in ("/ok", "/gone")
    }
    entries = [e for journey in found.values() for e in journey if e.stage == "dispatcher"]
    assert {e.target_ref for e in entries} == shown
    for entry in entries:
        assert "SECRET" not in f"{entry.target_ref} {entry.reason} {entry.error}"

    [letter] = [
        DEAD_LETTERS.decode(v)
        for _, v in await read_all(settings, DEAD_LETTERS.name(settings.topics.prefix))
    ]
    assert letter.event_id == rejected.id
    readable = f"{letter.reason} {letter.error} {letter.attempts}"
    assert "410" in readable
    assert "SECRET" not in readable
