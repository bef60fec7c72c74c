"""`triggerline_dead_letters_total` counts every letter the processors and the dispatchers write,
under a bounded reason, whatever free text the letter itself carries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import get_args

import pytest
from prometheus_client import REGISTRY

from dispatchers.targets import AttemptResult
from dispatchers.work_item import DeadLetterCause, WorkItem
from processors.dedupe import PartitionMarks
from processors.handler import DeadLetterReason, RawEventHandler
from schemas.codec import RecordPosition
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
from tests.unit.support.handler import (
    BoundedOutput,
    CompiledTriggers,
    RawRecord,
    raw_record,
    slack_envelope,
)

pytestmark = pytest.mark.unit

URL = "https://hooks.example.com/in"
POSITION = RecordPosition(f"{PREFIX}.routed-events", 0, 7)


class Counted:
    """What the counter gained, per reason, inside a `counting` block."""

    def __init__(self) -> None:
        self._before = self._now()
        self.gained: dict[str, float] = {}

    @staticmethod
    def _now() -> dict[str, float]:
        return {
            sample.labels["reason"]: sample.value
            for metric in REGISTRY.collect()
            if metric.name == "triggerline_dead_letters"
            for sample in metric.samples
            if sample.name == "triggerline_dead_letters_total"
        }

    def close(self) -> None:
        after = self._now()
        self.gained = {
            reason: value - self._before.get(reason, 0.0)
            for reason, value in after.items()
            if value != self._before.get(reason, 0.0)
        }


@contextmanager
def counting() -> Iterator[Counted]:
    counted = Counted()
    try:
        yield counted
    finally:
        counted.close()


class NoSlot:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


def ignore_retry(_: object) -> None:
    return None


@pytest.mark.parametrize(
    ("results", "max_attempts", "reason"),
    [
        ([AttemptResult("permanent", 410, "target answered 410")], 5, "rejected"),
        ([AttemptResult("retryable", 503, "target answered 503")] * 2, 2, "retries_exhausted"),
    ],
)
async def test_a_dispatcher_that_gives_up_counts_its_letter_by_cause(
    results: list[AttemptResult], max_attempts: int, reason: str
) -> None:
    producer = RecordingProducer()
    event = routed("http", URL)
    item = WorkItem(POSITION, event.subject.encode(), ROUTED_EVENTS.encode(event))

    with counting() as counted:
        await deliverer(
            target=ScriptedTarget(results),
            producer=producer,
            triggers=[dispatch_trigger(max_attempts=max_attempts)],
        ).deliver_record(item, NoSlot(), ignore_retry)

    assert len(producer.dead_letters()) == 1
    assert counted.gained == {reason: 1}


async def test_a_dispatcher_counts_undecodable_and_unusable_letters() -> None:
    producer = RecordingProducer()
    triggers = KnownTriggers()
    triggers.unusable_reasons["t-1"] = "secret was encrypted with key 'retired'"
    event = routed("http", URL)
    unusable = WorkItem(POSITION, b"k", ROUTED_EVENTS.encode(event))
    garbage = WorkItem(POSITION, b"k", b"\xff not a routed event")
    delivery = deliverer(target=ScriptedTarget([]), producer=producer, triggers=triggers)

    with counting() as counted:
        await delivery.deliver_record(unusable, NoSlot(), ignore_retry)
        await delivery.deliver_record(garbage, NoSlot(), ignore_retry)

    assert len(producer.dead_letters()) == 2
    assert counted.gained == {"trigger_unusable": 1, "undecodable": 1}


async def test_the_processors_count_each_letter_under_its_reason(marks: PartitionMarks) -> None:
    view = CompiledTriggers()
    view.unusable_reasons["s1"] = "its config does not compile: boom"
    handler = RawEventHandler(view, PREFIX, max_correlation_id_bytes=256)
    output = BoundedOutput()

    with counting() as counted:
        output.produce(await handler.handle(raw_record("s1", "slack", slack_envelope("hi")), marks))
        output.produce(await handler.handle(RawRecord(b"\xff not a raw event"), marks))

    assert [letter.reason for letter in output.dead_letters()] == [
        "trigger_unusable",
        "undecodable",
    ]
    assert counted.gained == {"trigger_unusable": 1, "undecodable": 1}


def test_every_series_is_exported_before_the_first_letter_or_delivery() -> None:
    # Prometheus sees a first letter or delivery as an increase only if its series was there.
    RawEventHandler(CompiledTriggers(), PREFIX, max_correlation_id_bytes=256)
    deliverer(target=ScriptedTarget([]), producer=RecordingProducer(), triggers=[])
    reasons = [
        *get_args(DeadLetterReason),
        *get_args(DeadLetterCause),
    ]

    exported = {
        reason: REGISTRY.get_sample_value("triggerline_dead_letters_total", {"reason": reason})
        for reason in reasons
    }

    assert None not in exported.values(), exported
    # So are the dispatchers' deliveries and latencies, for every target kind.
    for kind in ("http", "kafka", "noop"):
        labels = {"target_kind": kind}
        assert REGISTRY.get_sample_value("triggerline_end_to_end_seconds_count", labels) is not None
        assert (
            REGISTRY.get_sample_value("triggerline_dispatcher_attempt_seconds_count", labels)
            is not None
        )
        delivered = {**labels, "outcome": "delivered"}
        assert (
            REGISTRY.get_sample_value("triggerline_dispatcher_deliveries_total", delivered)
            is not None
        )
