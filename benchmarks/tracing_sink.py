"""What the tracing benchmark (`processor_throughput --tracing`) needs besides the processors: raw
records carrying trace context as ingest writes it with tracing on, and an OTLP/HTTP endpoint that
takes the spans and counts them, as a collector would, without keeping them."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def ingest_headers(count: int, sampled_share: float) -> list[list[tuple[str, bytes]]]:
    """`traceparent` headers for `count` raw records, each its own trace; one in
    1/`sampled_share` is sampled, as ingest's ratio sampler would decide at the trace's root."""
    every = max(1, round(1 / sampled_share))
    return [
        [
            (
                "traceparent",
                f"00-{secrets.randbits(128):032x}-{secrets.randbits(64):016x}-"
                f"{'01' if n % every == 0 else '00'}".encode(),
            )
        ]
        for n in range(count)
    ]


@dataclass
class OtlpSink:
    port: int = 0
    requests: int = 0
    spans: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        self.requests += 1
        self.spans += sum(
            len(scope.spans) for resource in export.resource_spans for scope in resource.scope_spans
        )
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")


@asynccontextmanager
async def otlp_sink() -> AsyncIterator[OtlpSink]:
    sink = OtlpSink()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sink.port = runner.addresses[0][1]
    try:
        yield sink
    finally:
        await runner.cleanup()
