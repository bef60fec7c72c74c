"""What each stage traces, on spans kept in memory: ingest's `send` span continues a sender's
`traceparent`; a processor's `process` span is the child of its raw record's context and each
routed record's `send` span its own child, named in the record's headers and its CloudEvent; a
dispatcher's `process` span continues the routed record's context, and each attempt is a span
whose context the request (or the kafka record) carries. With tracing off, nothing is added."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator

import pytest
from aiokafka.errors import KafkaTimeoutError
from opentelemetry.trace import SpanKind, StatusCode, format_trace_id

from dispatchers.targets import AttemptResult, Targets
from dispatchers.work_item import WorkItem
from ingest.handoff import KafkaUnavailable, RawEventWriter
from processors.dedupe import PartitionMarks
from processors.spans import ProcessorSpans
from runtime.kafka_targets import KafkaTargetPolicy
from runtime.settings import Settings
from runtime.tracing import ENDPOINT_VARIABLES, tracing_from_env
from runtime.tracing_export import DropWarnings
from schemas.codec import RecordPosition
from schemas.topics import ROUTED_EVENTS
from tests.unit.support.dispatch import (
    RecordingProducer,
    ScriptedTarget,
    deliverer,
    dispatch_trigger,
    policy,
    routed,
)
from tests.unit.support.handler import (
    PREFIX,
    handler,
    raw_event,
    raw_record,
    slack_envelope,
    trigger_config,
)
from tests.unit.support.tracing import (
    SENDER_SPAN_ID,
    SENDER_TRACE_ID,
    SENDER_TRACEPARENT,
    AcknowledgingProducer,
    RecordedSpans,
    loopback_target,
    parent_id,
    traceparent_of,
)

pytestmark = pytest.mark.unit

SETTINGS = Settings().override(topics__prefix=PREFIX)
SENDER_HEADERS = (("traceparent", SENDER_TRACEPARENT.encode()),)


@pytest.fixture
def spans() -> Iterator[RecordedSpans]:
    recorded = RecordedSpans()
    yield recorded
    recorded.shutdown()


def test_tracing_is_off_without_an_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert tracing_from_env("ingest") is None


def test_tracing_is_off_while_the_sdk_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing_from_env("ingest") is None


def test_dropped_spans_are_warned_of_once_an_interval() -> None:
    warnings = DropWarnings(interval_s=60.0)

    def passes(message: str) -> bool:
        return warnings.filter(logging.makeLogRecord({"msg": message, "levelno": 30}))

    assert passes("Queue full, dropping span.")
    assert not passes("Queue full, dropping span.")
    assert passes("Failed to export span batch")


async def test_ingest_continues_a_senders_trace(spans: RecordedSpans) -> None:
    producer = AcknowledgingProducer()
    writer = RawEventWriter(SETTINGS, producer, spans.tracing)

    trace_id = await writer.write(
        raw_event("t1", "slack", slack_envelope("hi")),
        {"traceparent": SENDER_TRACEPARENT, "tracestate": "vendor=abc"},
    )

    sent = spans.named("send unit.raw-events")
    assert sent.kind == SpanKind.PRODUCER
    assert (sent.context.trace_id, parent_id(sent)) == (SENDER_TRACE_ID, SENDER_SPAN_ID)
    assert trace_id == format_trace_id(SENDER_TRACE_ID)
    assert dict(sent.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": "unit.raw-events",
        "messaging.kafka.message.key": "t1",
        "messaging.destination.partition.id": "0",
    }
    assert producer.headers == [
        [("traceparent", traceparent_of(sent).encode()), ("tracestate", b"vendor=abc")]
    ]


async def test_ingest_starts_a_trace_for_a_request_without_a_valid_one(
    spans: RecordedSpans,
) -> None:
    producer = AcknowledgingProducer()
    writer = RawEventWriter(SETTINGS, producer, spans.tracing)

    await writer.write(raw_event("t1", "slack", slack_envelope("hi")), {"traceparent": "00-zz"})

    sent = spans.named("send unit.raw-events")
    assert sent.parent is None
    assert producer.headers == [[("traceparent", traceparent_of(sent).encode())]]


async def test_a_send_kafka_does_not_acknowledge_is_a_failed_span(spans: RecordedSpans) -> None:
    producer = AcknowledgingProducer(failure=KafkaTimeoutError())
    writer = RawEventWriter(SETTINGS, producer, spans.tracing)

    with pytest.raises(KafkaUnavailable):
        await writer.write(raw_event("t1", "slack", slack_envelope("hi")), {})

    sent = spans.named("send unit.raw-events")
    assert sent.status.status_code == StatusCode.ERROR
    assert (sent.attributes or {})["error.type"] == "KafkaTimeoutError"


async def test_ingest_writes_no_trace_context_with_tracing_off() -> None:
    producer = AcknowledgingProducer()
    writer = RawEventWriter(SETTINGS, producer)

    trace_id = await writer.write(
        raw_event("t1", "slack", slack_envelope("hi")), {"traceparent": SENDER_TRACEPARENT}
    )

    assert trace_id is None
    assert producer.headers == [None]


async def test_a_processed_event_continues_its_raw_records_trace(
    spans: RecordedSpans, marks: PartitionMarks
) -> None:
    record = dataclasses.replace(
        raw_record("t1", "slack", slack_envelope("hi")),
        headers=SENDER_HEADERS,
        partition=3,
        offset=17,
    )
    outputs = await handler(
        trigger_config("t1", "slack", event_types=["message"]),
        spans=ProcessorSpans(spans.tracing, SETTINGS),
    ).handle(record, marks)

    process = spans.named("process unit.raw-events")
    assert process.kind == SpanKind.CONSUMER
    assert (process.context.trace_id, parent_id(process)) == (SENDER_TRACE_ID, SENDER_SPAN_ID)
    assert dict(process.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": "unit.raw-events",
        "messaging.consumer.group.name": "unit.processors",
        "messaging.destination.partition.id": "3",
        "messaging.kafka.offset": 17,
        "messaging.kafka.message.key": "t1",
    }
    [routed_record, decision] = outputs
    send = spans.named("send unit.routed-events")
    assert (send.kind, parent_id(send)) == (SpanKind.PRODUCER, process.context.span_id)
    assert (send.attributes or {})["messaging.kafka.message.key"] == routed_record.key.decode()
    # The routed record and its CloudEvent name the send span; the decision, the process span.
    assert ("traceparent", traceparent_of(send).encode()) in routed_record.headers
    assert ROUTED_EVENTS.decode(routed_record.value).traceparent == traceparent_of(send)
    assert decision.headers == [("traceparent", traceparent_of(process).encode())]


async def test_an_event_without_trace_context_starts_a_trace_at_the_processors(
    spans: RecordedSpans, marks: PartitionMarks
) -> None:
    await handler(
        trigger_config("t1", "slack", event_types=["message"]),
        spans=ProcessorSpans(spans.tracing, SETTINGS),
    ).handle(raw_record("t1", "slack", slack_envelope("hi")), marks)

    assert spans.named("process unit.raw-events").parent is None


async def test_with_tracing_off_the_processors_add_no_trace_context(
    marks: PartitionMarks,
) -> None:
    record = dataclasses.replace(
        raw_record("t1", "slack", slack_envelope("hi")), headers=SENDER_HEADERS
    )
    [routed_record, decision] = await handler(
        trigger_config("t1", "slack", event_types=["message"])
    ).handle(record, marks)

    assert [name for name, _ in routed_record.headers] == [
        "content-type",
        "triggerline-destination",
    ]
    assert b"traceparent" not in routed_record.value
    assert decision.headers == []


async def test_a_dispatched_record_continues_the_trace_its_headers_carry(
    spans: RecordedSpans,
) -> None:
    event = routed("noop", "")
    producer = RecordingProducer()
    item = WorkItem(
        RecordPosition("unit.routed-events", 2, 41),
        event.subject.encode(),
        ROUTED_EVENTS.encode(event),
        headers=SENDER_HEADERS,
    )

    await deliverer(
        target=ScriptedTarget([AttemptResult("delivered")]),
        producer=producer,
        triggers=[dispatch_trigger()],
        tracing=spans.tracing,
    ).deliver_record(item, contextlib.nullcontext(), lambda _: None)

    process = spans.named("process unit.routed-events")
    assert (process.context.trace_id, parent_id(process)) == (SENDER_TRACE_ID, SENDER_SPAN_ID)
    attributes = dict(process.attributes or {})
    assert attributes["messaging.consumer.group.name"] == "unit.dispatchers"
    assert attributes["messaging.kafka.message.key"] == "conv-1"
    # The delivery log's record of the attempt names the record's process span.
    [logged] = producer.sent
    assert logged.headers == [("traceparent", traceparent_of(process).encode())]


async def test_an_http_attempt_is_a_client_span_whose_context_the_request_carries(
    spans: RecordedSpans,
) -> None:
    async with loopback_target() as target:
        target.status = 503
        targets = Targets(
            None,
            allow_private=True,
            max_connections=1,
            kafka_topics=KafkaTargetPolicy(PREFIX),
            tracing=spans.tracing,
        )
        await targets.start()
        try:
            url = f"http://user:pw@127.0.0.1:{target.port}/in/T0001/XoXb1234AbCd5678EfGh?token=s"
            result = await targets.attempt(routed("http", url), b"{}", policy())
        finally:
            await targets.close()

    assert result.http_status == 503
    [attempt] = spans.finished()
    assert (attempt.name, attempt.kind) == ("POST", SpanKind.CLIENT)
    # No credentials, query or token-like path segment.
    assert dict(attempt.attributes or {}) == {
        "http.request.method": "POST",
        "url.full": f"http://127.0.0.1:{target.port}/in/T0001/redacted",
        "server.address": "127.0.0.1",
        "server.port": target.port,
        "http.response.status_code": 503,
        "error.type": "503",
    }
    assert attempt.status.status_code == StatusCode.ERROR
    [(headers, _)] = target.requests
    assert headers["traceparent"] == traceparent_of(attempt)


async def test_a_kafka_attempt_is_a_send_span_whose_context_the_record_carries(
    spans: RecordedSpans,
) -> None:
    producer = RecordingProducer()
    targets = Targets(
        producer,
        allow_private=False,
        max_connections=1,
        kafka_topics=KafkaTargetPolicy(PREFIX),
        tracing=spans.tracing,
    )

    result = await targets.attempt(routed("kafka", "customer-events"), b"{}", policy())

    assert result.outcome == "delivered"
    send = spans.named("send customer-events")
    assert (send.attributes or {})["messaging.kafka.message.key"] == "conv-1"
    [sent] = producer.sent
    assert ("traceparent", traceparent_of(send).encode()) in (sent.headers or [])


async def test_with_tracing_off_an_attempt_carries_no_trace_context() -> None:
    async with loopback_target() as target:
        targets = Targets(
            None, allow_private=True, max_connections=1, kafka_topics=KafkaTargetPolicy(PREFIX)
        )
        await targets.start()
        try:
            await targets.attempt(routed("http", target.url("/in")), b"{}", policy())
        finally:
            await targets.close()

    [(headers, _)] = target.requests
    assert "webhook-signature" in headers
    assert "traceparent" not in headers
