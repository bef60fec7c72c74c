"""One webhook is one trace through the code of every stage, handed on as the stages hand it on
(record headers), with Kafka left out: ingest's writer, the processors' handler, and a
dispatcher's delivery to a real http target. The same on real Kafka and processes:
tests/integration/test_tracing.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import msgspec
import orjson
import pytest

from dispatchers.compiled import DispatchTrigger
from dispatchers.targets import Targets
from dispatchers.work_item import WorkItem
from ingest.handoff import RawEventWriter
from processors.dedupe import PartitionMarks
from processors.spans import ProcessorSpans
from runtime.kafka_targets import KafkaTargetPolicy
from runtime.settings import Settings
from schemas.codec import RecordPosition
from schemas.triggers import Destination, Target
from tests.unit.support.dispatch import RecordingProducer, deliverer, policy
from tests.unit.support.handler import PREFIX, RawRecord, handler, raw_event, trigger_config
from tests.unit.support.tracing import (
    AcknowledgingProducer,
    RecordedSpans,
    loopback_target,
    parent_id,
    traceparent_of,
)

pytestmark = pytest.mark.unit

SETTINGS = Settings().override(topics__prefix=PREFIX)


@pytest.fixture
def spans() -> Iterator[RecordedSpans]:
    recorded = RecordedSpans()
    yield recorded
    recorded.shutdown()


async def test_one_webhook_is_one_trace_from_ingest_to_the_target(
    spans: RecordedSpans, marks: PartitionMarks
) -> None:
    async with loopback_target() as target:
        # Ingest stores the raw event.
        raw_producer = AcknowledgingProducer()
        event = raw_event("t1", "webhook", {"n": 1}, {"webhook-id": "msg_1"})
        await RawEventWriter(SETTINGS, raw_producer, spans.tracing).write(event, {})
        [raw_headers] = raw_producer.headers
        # The processors route it to the http target.
        config = msgspec.structs.replace(
            trigger_config("t1", "webhook"),
            destinations=(Destination("default", Target("http", target.url("/in"))),),
        )
        [routed, _] = await handler(config, spans=ProcessorSpans(spans.tracing, SETTINGS)).handle(
            RawRecord(raw_producer.values[0], b"t1", headers=tuple(raw_headers or ())), marks
        )
        # A dispatcher delivers it.
        targets = Targets(
            RecordingProducer(),
            allow_private=True,
            max_connections=1,
            kafka_topics=KafkaTargetPolicy(PREFIX),
            tracing=spans.tracing,
        )
        await targets.start()
        try:
            item = WorkItem(
                RecordPosition(routed.topic, 0, 0), routed.key, routed.value, headers=routed.headers
            )
            finished = await deliverer(
                target=targets,
                producer=RecordingProducer(),
                triggers=[DispatchTrigger("t1", "p-unit", {"default": policy()})],
                tracing=spans.tracing,
            ).deliver_record(item, contextlib.nullcontext(), lambda _: None)
        finally:
            await targets.close()

    assert finished
    trace = spans.finished()
    assert [span.name for span in trace] == [
        "send unit.raw-events",
        "process unit.raw-events",
        "send unit.routed-events",
        "process unit.routed-events",
        "POST",
    ]
    # One trace, each span the child of the one before.
    assert {span.context.trace_id for span in trace} == {trace[0].context.trace_id}
    assert [parent_id(span) for span in trace] == [
        None,
        *(span.context.span_id for span in trace[:-1]),
    ]
    ingest_send, _, processor_send, _, attempt = trace
    assert ingest_send.parent is None
    [(headers, body)] = target.requests
    assert headers["traceparent"] == traceparent_of(attempt)
    assert orjson.loads(body)["traceparent"] == traceparent_of(processor_send)
