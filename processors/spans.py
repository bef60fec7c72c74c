"""The processors' spans, the same for both engines: one `process` span per raw event, one
`send` span per routed record, and the trace context passed on in record headers and in the
routed CloudEvent.

Both engines fetch raw records in batches, but the decision code takes them one at a time, so
each event gets a `process` span of its own, the child of the creation context ingest put in its
record's headers: one webhook stays one trace. The conventions' alternative for batches, one
`process` span per fetched batch linking every message's creation context, would put no
processor span in any webhook's trace, and a fetch of 500 records is past the SDK's 128 links.

Routed records are sent in batches as well (the batch engine's record batches per transaction,
aiokafka's accumulator under faust), as every Kafka producer sends. As aiokafka's own
instrumentation does for `send()`, whose records also go out in the client's batches, each
routed record gets a `send` span when it is handed over; its context is the record's creation
context, so the dispatcher's `process` span is its child and the CloudEvent carries it. The
event's other records (delivery-log decisions, dead letters) carry the `process` span's
context.
"""

from __future__ import annotations

import msgspec
from opentelemetry.trace import Span

from processors.outputs import Headers, Output, SourceRecord
from runtime.settings import Settings
from runtime.tracing import TRACEPARENT, TRACESTATE, CurrentSpan, Tracing
from schemas.records import RoutedEvent
from schemas.topics import ROUTED_EVENTS


class ProcessorSpans:
    def __init__(self, tracing: Tracing, settings: Settings) -> None:
        self._tracing = tracing
        self._group = settings.group("processors")
        self._routed_topic = ROUTED_EVENTS.name(settings.topics.prefix)

    def processing(self, source: SourceRecord) -> CurrentSpan:
        """The raw event's `process` span, current for the `with` block."""
        return self._tracing.processing(
            source.topic,
            group=self._group,
            partition=source.partition,
            offset=source.offset,
            key=source.key,
            headers=source.headers,
        )

    def named(self, outputs: list[Output], process: Span) -> list[Output]:
        """The event's outputs, each naming its span: a routed record its own `send` span
        (`routed`), every other record (decisions, dead letters) the `process` span."""
        headers = self._tracing.record_headers(process)
        routed = self._routed_topic
        return [o if o.topic == routed else o._replace(headers=headers) for o in outputs]

    def routed(self, event: RoutedEvent, headers: Headers) -> RoutedEvent:
        """The routed event with its creation context as CloudEvent attributes, which are also
        added to its record `headers`; the `send` span is the current span's child."""
        span = self._tracing.start_send(self._routed_topic, key=event.subject)
        try:
            fields = self._tracing.context_fields(span)
        finally:
            span.end()
        headers.extend((name, value.encode()) for name, value in fields.items())
        return msgspec.structs.replace(
            event,
            traceparent=fields.get(TRACEPARENT, msgspec.UNSET),
            tracestate=fields.get(TRACESTATE, msgspec.UNSET),
        )
