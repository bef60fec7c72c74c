"""Tracing on real Kafka and PostgreSQL, with every stage its own process exporting over OTLP to
a receiver here, on both processor engines: one webhook is one trace from ingest's `send` span
to the dispatcher's attempt, each span the child of the one before; the target receives the
attempt's `traceparent` and a CloudEvent naming the processors' `send` span; and a sender's own
`traceparent` is continued rather than replaced."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest

from runtime.settings import Settings
from tests.integration.support.control_plane import WHSEC, project_with_key, webhook_trigger
from tests.integration.support.dispatch_harness import (
    SIGNING_SECRET,
    Received,
    TargetServer,
    target_server,
)
from tests.integration.support.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.integration.support.polling import eventually
from tests.integration.support.processor_workers import ENGINES
from tests.integration.support.stages import running_stages, wait_until_ready, with_free_ports
from tests.support.signing import standard_webhook_headers

pytestmark = pytest.mark.integration

SENDER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SENDER_SPAN_ID = "00f067aa0ba902b7"
SENDER_TRACEPARENT = f"00-{SENDER_TRACE_ID}-{SENDER_SPAN_ID}-01"
# How often the stages' span processors export, in milliseconds: soon after each span ends.
EXPORT_DELAY_MS = "100"


def trace_context(traceparent: str) -> tuple[str, str]:
    """(trace id, span id) of a `traceparent`."""
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


async def http_trigger(client: httpx.AsyncClient, auth: dict[str, str], target_url: str) -> str:
    """A webhook trigger delivering to `target_url`; its webhook path."""
    target = {"kind": "http", "ref": target_url, "signing_secret": SIGNING_SECRET}
    created = await client.post(
        "/triggers", json=webhook_trigger("traced", target=target), headers=auth
    )
    assert created.status_code == 201, created.text
    return f"/webhooks/{created.json()['id']}"


async def post_signed(
    client: httpx.AsyncClient, path: str, msg_id: str, extra: dict[str, str]
) -> httpx.Response:
    """POST once the trigger has reached ingest (through the outbox and the config topic;
    until then its route answers 404)."""
    body = orjson.dumps({"seq": 1})
    headers = {**standard_webhook_headers(body, WHSEC, msg_id=msg_id), **extra}

    async def post() -> httpx.Response | None:
        response = await client.post(path, content=body, headers=headers)
        return None if response.status_code == 404 else response

    return await eventually(post)


async def delivered(target: TargetServer, *msg_ids: str) -> dict[str, Received]:
    """The target's request for each webhook id, once all have arrived."""

    async def arrived() -> dict[str, Received] | None:
        by_id = {request.webhook_id: request for request in target.received}
        return by_id if set(msg_ids) <= by_id.keys() else None

    return await eventually(arrived, 60)


async def whole_trace(collector: OtlpReceiver, traceparent: str | None) -> list[ReceivedSpan]:
    """The trace `traceparent` names, once its five spans have arrived (each stage exports on
    its own)."""
    assert traceparent is not None

    async def arrived() -> list[ReceivedSpan] | None:
        found = collector.trace(trace_context(traceparent)[0])
        return found if len(found) >= 5 else None

    return await eventually(arrived, 30)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_webhook_is_one_trace_from_ingest_to_the_target(
    settings: Settings, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = with_free_ports(settings)
    prefix = settings.topics.prefix
    _, auth = await project_with_key(settings, "traced")
    base = f"http://127.0.0.1:{settings.ingest.port}"
    fresh, continued = f"msg_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}"
    async with otlp_receiver() as collector, target_server() as target:
        # Inherited by the stages' processes.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", EXPORT_DELAY_MS)
        monkeypatch.setenv("TRIGGERLINE_PROCESSOR_ENGINE", engine)
        monkeypatch.setenv("TRIGGERLINE_DISPATCHER_ALLOW_PRIVATE_TARGETS", "true")
        with running_stages(settings, "ingest", "processors", "dispatchers"):
            await wait_until_ready(f"{base}/readyz")
            async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
                path = await http_trigger(client, auth, target.url("/in"))
                for msg_id, extra in (
                    (fresh, {}),
                    (continued, {"traceparent": SENDER_TRACEPARENT}),
                ):
                    accepted = await post_signed(client, path, msg_id, extra)
                    assert accepted.status_code == 200, accepted.text
            received = await delivered(target, fresh, continued)
            traces = {
                msg_id: await whole_trace(collector, received[msg_id].traceparent)
                for msg_id in (fresh, continued)
            }

    for msg_id, trace in traces.items():
        assert [(span.service, span.name) for span in trace] == [
            ("triggerline-ingest", f"send {prefix}.raw-events"),
            ("triggerline-processors", f"process {prefix}.raw-events"),
            ("triggerline-processors", f"send {prefix}.routed-events"),
            ("triggerline-dispatchers", f"process {prefix}.routed-events"),
            ("triggerline-dispatchers", "POST"),
        ]
        # Each span the child of the one before; the attempt is the one the target was told of.
        assert [span.parent_id for span in trace[1:]] == [span.span_id for span in trace[:-1]]
        assert trace_context(received[msg_id].traceparent or "") == (
            trace[-1].trace_id,
            trace[-1].span_id,
        )
        assert trace[-1].attributes["http.response.status_code"] == 204
        assert trace[1].attributes["messaging.consumer.group.name"] == f"{prefix}.processors"
        # The CloudEvent names the processors' send span.
        cloud_event = orjson.loads(received[msg_id].body)
        assert trace_context(cloud_event["traceparent"]) == (trace[2].trace_id, trace[2].span_id)

    assert traces[fresh][0].parent_id == ""
    assert (traces[continued][0].trace_id, traces[continued][0].parent_id) == (
        SENDER_TRACE_ID,
        SENDER_SPAN_ID,
    )
