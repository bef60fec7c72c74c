"""The OpenTelemetry SDK set up to export spans over OTLP/HTTP; imported only when tracing is on
(runtime/tracing.py).

The SDK reads the standard variables itself: the endpoint, headers, timeout and compression of
the exporter (`OTEL_EXPORTER_OTLP_*`), the sampler (`OTEL_TRACES_SAMPLER`, `_ARG`), the batch
processor's queue and schedule (`OTEL_BSP_*`) and the resource (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`). Spans wait in the batch processor's bounded queue and are exported
from its own thread; when the queue is full, spans are dropped, never waited for, so a slow or
absent collector cannot slow the pipeline. The provider flushes that queue when the process
exits normally.
"""

from __future__ import annotations

import logging
import os
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

INSTRUMENTATION_SCOPE = "triggerline"
# The batch processor warns of every span it drops; one warning this often says as much.
DROP_WARNING_INTERVAL_S = 60.0
BATCH_PROCESSOR_LOGGER = "opentelemetry.sdk._shared_internal"


def tracer(service: str) -> Tracer:
    """A tracer whose spans go to the configured OTLP endpoint, from a provider of this
    process's own; its service is `triggerline-<service>` unless the environment names one."""
    logging.getLogger(BATCH_PROCESSOR_LOGGER).addFilter(DropWarnings(DROP_WARNING_INTERVAL_S))
    provider = TracerProvider(resource=Resource.create(_default_service(service)))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider.get_tracer(INSTRUMENTATION_SCOPE)


def _default_service(service: str) -> dict[str, str]:
    named = os.environ.get("OTEL_SERVICE_NAME") or any(
        item.strip().startswith(f"{SERVICE_NAME}=")
        for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")
    )
    return {} if named else {SERVICE_NAME: f"triggerline-{service}"}


class DropWarnings(logging.Filter):
    """Lets through one "Queue full" warning per interval; other records pass."""

    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._next = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Queue full"):
            return True
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval_s
        return True
