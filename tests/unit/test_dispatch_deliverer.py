"""One routed record's way through the Deliverer, with a scripted target and the journal
writing to an in-memory producer: retries, giving up, refusals, open circuits, and triggers
that are gone or unusable."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from dispatchers.circuit import CircuitBreakers
from dispatchers.targets import AttemptResult
from dispatchers.tracker import RetryState
from dispatchers.work_item import WorkItem
from schemas.codec import RecordPosition
from schemas.records import RoutedEvent
from schemas.topics import ROUTED_EVENTS
from tests.unit.support.dispatch import (
    PREFIX,
    KnownTriggers,
    RecordingProducer,
    ScriptedTarget,
    deliverer,
    dispatch_trigger,
    routed,
)

pytestmark = pytest.mark.unit

URL = "https://hooks.example.com/in"
POSITION = RecordPosition(f"{PREFIX}.routed-events", 2, 41)
UNAVAILABLE = AttemptResult("retryable", 503, "target answered 503")
DELIVERED = AttemptResult("delivered", 200)


def work_item(event: RoutedEvent, retry: RetryState | None = None) -> WorkItem:
    return WorkItem(POSITION, event.subject.encode(), ROUTED_EVENTS.encode(event), retry)


class NoSlot:
    """The partition's and process's in-flight slots, which a single delivery never waits for."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


class RetryStates(list[RetryState]):
    """The retry states the Deliverer hands to its caller, as the dispatcher keeps them."""

    def __call__(self, state: RetryState) -> None:
        self.append(state)


async def test_a_retryable_failure_is_retried_and_then_delivered() -> None:
    target = ScriptedTarget([UNAVAILABLE, DELIVERED])
    producer = RecordingProducer()
    event = routed("http", URL)
    retries = RetryStates()

    finished = await deliverer(
        target=target, producer=producer, triggers=[dispatch_trigger()]
    ).deliver_record(work_item(event), NoSlot(), retries)

    assert finished
    assert len(target.attempts) == 2
    assert [(outcome, attempt) for outcome, attempt, _ in producer.steps()] == [
        ("retrying", 1),
        ("delivered", 2),
    ]
    assert [entry.http_status for entry in producer.delivery_log()] == [503, 200]
    # The caller learns the retry state, so a successor can carry on from it.
    assert [state.attempts for state in retries] == [1]
    assert producer.dead_letters() == []


async def test_after_its_last_attempt_the_record_is_dead_lettered_with_the_reason() -> None:
    target = ScriptedTarget([UNAVAILABLE] * 3)
    producer = RecordingProducer()
    event = routed("http", URL)
    item = work_item(event)

    finished = await deliverer(
        target=target, producer=producer, triggers=[dispatch_trigger(max_attempts=3)]
    ).deliver_record(item, NoSlot(), RetryStates())

    assert finished
    assert len(target.attempts) == 3
    assert producer.steps() == [
        ("retrying", 1, "next attempt in 0.0 s"),
        ("retrying", 2, "next attempt in 0.0 s"),
        ("failed", 3, None),
        ("dead_lettered", 3, "gave up after 3 attempts"),
    ]
    [letter] = producer.dead_letters()
    assert (letter.stage, letter.reason, letter.error) == (
        "dispatcher",
        "gave up after 3 attempts",
        "target answered 503",
    )
    assert (letter.event_id, letter.trigger_id) == (event.id, event.triggerid)
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        POSITION.topic,
        POSITION.partition,
        POSITION.offset,
    )
    # The routed record unchanged, so that a re-drive delivers it again.
    assert base64.b64decode(letter.value_b64 or "") == item.value
    assert [a["outcome"] for a in letter.attempts] == ["retryable"] * 3


async def test_a_restored_retry_state_counts_the_attempts_made_before() -> None:
    target = ScriptedTarget([UNAVAILABLE])
    producer = RecordingProducer()
    now = time.time()
    earlier = RetryState(attempts=2, first_attempt_at=now - 5, due_at=now)

    await deliverer(
        target=target, producer=producer, triggers=[dispatch_trigger(max_attempts=3)]
    ).deliver_record(work_item(routed("http", URL), earlier), NoSlot(), RetryStates())

    assert len(target.attempts) == 1
    assert producer.steps()[-1] == ("dead_lettered", 3, "gave up after 3 attempts")


async def test_a_permanent_failure_is_dead_lettered_at_once() -> None:
    target = ScriptedTarget([AttemptResult("permanent", 410, "target answered 410")])
    producer = RecordingProducer()

    finished = await deliverer(
        target=target, producer=producer, triggers=[dispatch_trigger(max_attempts=5)]
    ).deliver_record(work_item(routed("http", URL)), NoSlot(), RetryStates())

    assert finished
    assert len(target.attempts) == 1
    assert producer.steps() == [
        ("failed", 1, None),
        ("dead_lettered", 1, "rejected by target"),
    ]
    [letter] = producer.dead_letters()
    assert (letter.reason, letter.error) == ("rejected by target", "target answered 410")


async def test_a_record_waits_out_an_open_circuit_without_spending_an_attempt() -> None:
    # One failure opens the circuit; after a short cooldown one probe may go out.
    breakers = CircuitBreakers(1, 0.05, max_destinations=10, idle_s=60.0)
    target = ScriptedTarget([UNAVAILABLE, DELIVERED], breakers=breakers)
    producer = RecordingProducer()

    finished = await deliverer(
        target=target,
        producer=producer,
        # Two attempts only: one spent against the open circuit would leave none to deliver.
        triggers=[dispatch_trigger(max_attempts=2)],
        breakers=breakers,
    ).deliver_record(work_item(routed("http", URL)), NoSlot(), RetryStates())

    assert finished
    # The second attempt is the half-open circuit's probe, never one while it was open.
    assert target.circuit_states == ["closed", "half_open"]
    assert [outcome for outcome, _, _ in producer.steps()] == ["retrying", "delivered"]


async def test_a_record_waiting_on_an_open_circuit_is_given_back_on_shutdown() -> None:
    breakers = CircuitBreakers(1, 3600.0, max_destinations=10, idle_s=60.0)
    event = routed("http", URL)
    with breakers.hold("http", event.triggerid, event.destination) as breaker:
        await breaker.record(False)
        assert breaker.state == "open"
    target = ScriptedTarget([DELIVERED])
    producer = RecordingProducer()
    stopping = asyncio.Event()
    delivering = asyncio.create_task(
        deliverer(
            target=target,
            producer=producer,
            triggers=[dispatch_trigger()],
            breakers=breakers,
            stopping=stopping,
        ).deliver_record(work_item(event), NoSlot(), RetryStates())
    )

    stopping.set()
    finished = await asyncio.wait_for(delivering, 5)

    assert not finished
    assert target.attempts == []
    assert producer.sent == []


async def test_an_event_of_a_deleted_trigger_is_skipped_without_an_attempt() -> None:
    target = ScriptedTarget([])
    producer = RecordingProducer()

    finished = await deliverer(target=target, producer=producer).deliver_record(
        work_item(routed("http", URL)), NoSlot(), RetryStates()
    )

    assert finished
    assert target.attempts == []
    assert producer.steps() == [("skipped", 0, "trigger no longer exists")]
    assert producer.dead_letters() == []


async def test_an_event_of_an_unusable_trigger_is_dead_lettered_with_the_cause() -> None:
    triggers = KnownTriggers()
    triggers.unusable_reasons["t-1"] = "secret was encrypted with key 'retired'"
    target = ScriptedTarget([])
    producer = RecordingProducer()

    finished = await deliverer(target=target, producer=producer, triggers=triggers).deliver_record(
        work_item(routed("http", URL)), NoSlot(), RetryStates()
    )

    assert finished
    assert target.attempts == []
    assert producer.steps() == [("dead_lettered", 0, "trigger_unusable")]
    [letter] = producer.dead_letters()
    assert (letter.reason, letter.error) == (
        "trigger_unusable",
        "secret was encrypted with key 'retired'",
    )


async def test_an_undecodable_record_is_dead_lettered_where_it_was_found() -> None:
    target = ScriptedTarget([])
    producer = RecordingProducer()
    garbage = WorkItem(POSITION, b"k", b"\xff not a routed event")

    finished = await deliverer(
        target=target, producer=producer, triggers=[dispatch_trigger()]
    ).deliver_record(garbage, NoSlot(), RetryStates())

    assert finished
    assert target.attempts == []
    [letter] = producer.dead_letters()
    assert letter.reason == "undecodable"
    assert f"{POSITION.topic}[{POSITION.partition}]@{POSITION.offset}" in (letter.error or "")
    assert base64.b64decode(letter.value_b64 or "") == garbage.value
    # Without an event there is no journey to record it on.
    assert producer.delivery_log() == []
