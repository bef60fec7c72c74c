"""Spans kept in memory, a raw-events producer that remembers record headers, and a loopback
http target that remembers request headers: the seams of unit tests of what each stage traces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id

from runtime.tracing import Tracing

# A sender's context: trace 0x0af7651916cd43dd8448eb211c80319c, span 0xb7ad6b7169203331.
SENDER_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SENDER_SPAN_ID = 0xB7AD6B7169203331
SENDER_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class RecordedSpans:
    """A `Tracing` whose spans are kept in memory as they end."""

    def __init__(self) -> None:
        self._exporter = InMemorySpanExporter()
        self._provider = TracerProvider(shutdown_on_exit=False)
        self._provider.add_span_processor(SimpleSpanProcessor(self._exporter))
        self.tracing = Tracing(self._provider.get_tracer("tests"))

    def finished(self) -> list[ReadableSpan]:
        """Every ended span, in the order they started."""
        return sorted(self._exporter.get_finished_spans(), key=lambda span: span.start_time or 0)

    def named(self, name: str) -> ReadableSpan:
        [span] = [span for span in self.finished() if span.name == name]
        return span

    def shutdown(self) -> None:
        self._provider.shutdown()


def traceparent_of(span: ReadableSpan) -> str:
    """The `traceparent` that names `span`."""
    context = span.context
    trace_id, span_id = format_trace_id(context.trace_id), format_span_id(context.span_id)
    return f"00-{trace_id}-{span_id}-{context.trace_flags:02x}"


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


@dataclass(frozen=True)
class Stored:
    partition: int


@dataclass
class AcknowledgingProducer:
    """Kafka's producer seam for ingest: every record is stored on partition 0 and kept, or
    refused with `failure`."""

    failure: Exception | None = None
    headers: list[list[tuple[str, bytes]] | None] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes,
        partition: int | None,
        headers: list[tuple[str, bytes]] | None,
    ) -> Stored:
        self.values.append(value)
        self.headers.append(headers)
        if self.failure is not None:
            raise self.failure
        return Stored(0)


@dataclass
class LoopbackTarget:
    """An http target on 127.0.0.1 that answers `status` and keeps each request's headers and
    body."""

    port: int = 0
    status: int = 204
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append((headers, await request.read()))
        return web.Response(status=self.status)


@asynccontextmanager
async def loopback_target() -> AsyncIterator[LoopbackTarget]:
    target = LoopbackTarget()
    app = web.Application()
    app.router.add_post("/{tail:.*}", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # Port 0: the system picks a free one.
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    target.port = runner.addresses[0][1]
    try:
        yield target
    finally:
        await runner.cleanup()
