"""Distributed tracing with OpenTelemetry: one trace per webhook, from ingest to the target.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and
off means nothing runs: `tracing_from_env` returns None, no tracer provider exists, the SDK and
the exporter are not even imported (runtime/tracing_export.py), and each stage holds None where
it would hold a `Tracing`. Per event a stage then compares that attribute with None and does
nothing more: no span, no header read or written.

On, the W3C trace context (`traceparent`, `tracestate`) goes from the webhook to the target:
ingest continues the sender's `traceparent` request header, or starts a trace; Kafka record
headers carry the context on raw-events, routed-events, the delivery log and dead letters; the
routed CloudEvent carries its creation context as the CloudEvents distributed-tracing extension
attributes; a delivery attempt sends its own span's context as request headers (http) or record
headers (kafka).

Spans follow the OpenTelemetry messaging conventions, created by hand in each stage rather than
by an instrumentation package: faust has none, and the batch engine produces through
`send_batch`, which aiokafka's instrumentation does not see. A consumer's `process` span takes
the message's creation context as its parent, which the conventions allow when one message is
processed at a time (every stage handles one record at a time, even when it fetches them in
batches), so that one webhook is one trace rather than spans joined only by links.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from contextvars import Token
from types import TracebackType
from typing import Protocol, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_FIELDS = frozenset((TRACEPARENT, TRACESTATE))

# Kafka record headers as aiokafka hands them over (a header's value may be null).
RecordHeaders = Sequence[tuple[str, bytes | None]]

_W3C = TraceContextTextMapPropagator()


class _Export(Protocol):
    def tracer(self, service: str) -> Tracer: ...


def tracing_from_env(service: str) -> Tracing | None:
    """A `Tracing` exporting over OTLP/HTTP when an OTLP endpoint is configured; None, having
    set up nothing, when none is (or `OTEL_SDK_DISABLED=true`).

    The SDK reads its other `OTEL_*` variables itself: sampler, batch queue, exporter headers
    and timeout, resource attributes.
    """
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return None
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    # Imported only now: a process with tracing off never loads the SDK or the exporter.
    export = cast(_Export, importlib.import_module("runtime.tracing_export"))
    return Tracing(export.tracer(service))


class Tracing:
    """Spans and trace-context carriers over one tracer; a stage holds one only when tracing
    is on."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    # Carriers: read through the W3C propagator, which checks what it is given; written from
    # the span's own context.

    @staticmethod
    def request_context(headers: Mapping[str, str]) -> Context:
        """The context an HTTP request's `traceparent` and `tracestate` carry (names in lower
        case); empty, so that a span started in it is a root, when there is none valid."""
        return _W3C.extract(headers)

    @staticmethod
    def record_context(headers: RecordHeaders | None) -> Context:
        """The creation context a Kafka record's headers carry; empty if none valid."""
        carried = {
            name: value.decode("latin-1")
            for name, value in headers or ()
            if name in TRACE_FIELDS and value is not None
        }
        return _W3C.extract(carried)

    @staticmethod
    def context_fields(span: Span) -> dict[str, str]:
        """`traceparent` (and `tracestate`, if any) naming the span: for request headers and
        CloudEvent attributes; none for an invalid span."""
        context = span.get_span_context()
        if not context.is_valid:
            return {}
        fields = {
            TRACEPARENT: f"00-{context.trace_id:032x}-{context.span_id:016x}-"
            f"{context.trace_flags:02x}"
        }
        if context.trace_state:
            fields[TRACESTATE] = context.trace_state.to_header()
        return fields

    @staticmethod
    def record_headers(span: Span) -> list[tuple[str, bytes]]:
        """The same as Kafka record headers."""
        return [(name, value.encode()) for name, value in Tracing.context_fields(span).items()]

    @staticmethod
    def current_record_headers() -> list[tuple[str, bytes]]:
        """Record headers naming the current span; none outside a span."""
        return Tracing.record_headers(trace.get_current_span())

    @staticmethod
    def trace_id(span: Span) -> str:
        return trace.format_trace_id(span.get_span_context().trace_id)

    @staticmethod
    def failed(span: Span, error_type: str, description: str | None = None) -> None:
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, description))

    # Spans.

    def start_send(self, topic: str, *, key: str | None, parent: Context | None = None) -> Span:
        """A producer span for one record handed over for sending to `topic`, the child of
        `parent` (else of the current span); its context is the record's creation context.
        The caller ends it."""
        attributes: dict[str, AttributeValue] = {
            "messaging.system": "kafka",
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
        }
        if key is not None:
            attributes["messaging.kafka.message.key"] = key
        return self._tracer.start_span(
            f"send {topic}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
        )

    def processing(
        self,
        topic: str,
        *,
        group: str | None,
        partition: int,
        offset: int,
        key: bytes | None,
        headers: RecordHeaders | None,
    ) -> CurrentSpan:
        """A consumer span processing one record, current for the `with` block; the child of
        the record's creation context, or a root if it carries none."""
        attributes: dict[str, AttributeValue] = {
            "messaging.system": "kafka",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
        }
        if group is not None:
            attributes["messaging.consumer.group.name"] = group
        if key is not None:
            attributes["messaging.kafka.message.key"] = key.decode(errors="replace")
        span = self._tracer.start_span(
            f"process {topic}",
            context=self.record_context(headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        return CurrentSpan(span)

    def start_http_attempt(self, method: str, url: str, host: str, port: int) -> Span:
        """An HTTP client span for one request, the current span's child. `url` must already
        be free of credentials and query; the caller ends the span."""
        return self._tracer.start_span(
            method,
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "url.full": url,
                "server.address": host,
                "server.port": port,
            },
        )


class CurrentSpan:
    """Makes a span current for a `with` block and ends it there; an exception that escapes
    the block marks it failed. A class rather than a generator: it runs once per event."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: Token[Context] | None = None

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            otel_context.detach(self._token)
        # A cancelled task is not a failed one.
        if isinstance(error, Exception):
            Tracing.failed(self._span, type(error).__qualname__, str(error))
        self._span.end()
