"""`POST /webhooks/{trigger_id}`: verify, bound, and hand off to Kafka before answering 2xx.

The order of checks is deliberate: find the trigger (404), read at most the size limit (413),
verify the signature before looking at the content (401), then parse (415, 400). Only a request
proven to come from the sender can spend the trigger's rate budget (429), so forgeries cannot
push a real sender's events into 429s.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ingest.handoff import KafkaUnavailable, RawEventWriter
from ingest.rate_limit import retry_after_header
from ingest.recent_ids import RecentIds
from ingest.slack_signature import SignatureRejected, verify_slack_signature
from ingest.standard_signature import verify_standard_signature
from ingest.triggers import IngressTrigger
from runtime.config_view import TriggerConfigView
from runtime.logging import log_context
from runtime.metrics import INGEST_IN_FLIGHT, INGEST_REQUESTS
from schemas.records import RawEvent

log = logging.getLogger("triggerline.ingest")

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
# Headers replay and audit need; everything else (cookies, auth, signatures) stays behind.
# The retry headers and webhook-id are what the processors deduplicate on.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "x-slack-retry-num",
    "x-slack-retry-reason",
    "webhook-id",
)

router = APIRouter()


class Rejection(Exception):
    def __init__(
        self, status: int, outcome: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.message = message
        self.headers = headers


@router.post("/webhooks/{trigger_id}")
async def receive_webhook(trigger_id: str, request: Request) -> Response:
    view: TriggerConfigView[IngressTrigger] = request.app.state.trigger_view
    trigger = view.get(trigger_id)
    definition = trigger.definition if trigger else "unknown"
    INGEST_IN_FLIGHT.inc()
    try:
        with log_context(trigger_id=trigger_id):
            response, outcome = await _handle(trigger, request)
    except Rejection as rejection:
        response = JSONResponse(
            {"error": rejection.message}, status_code=rejection.status, headers=rejection.headers
        )
        outcome = rejection.outcome
    finally:
        INGEST_IN_FLIGHT.dec()
    INGEST_REQUESTS.labels(definition, outcome).inc()
    return response


async def _handle(trigger: IngressTrigger | None, request: Request) -> tuple[Response, str]:
    if trigger is None or not trigger.receives_webhooks:
        raise Rejection(404, "not_found", "no webhook trigger with this id")
    max_bytes: int = request.app.state.settings.ingest_max_body_bytes
    body = await _read_bounded(request, max_bytes)
    headers = dict(request.headers.items())
    verify = verify_slack_signature if trigger.definition == "slack" else verify_standard_signature
    try:
        verify(headers, body, trigger.signing_secrets)
    except SignatureRejected as exc:
        # The reason is logged for operators; the caller learns nothing it could use.
        log.info("signature rejected", extra={"reason": str(exc)})
        raise Rejection(401, "unauthorized", "invalid request signature") from None
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise Rejection(400, "bad_request", "body is not valid UTF-8") from None

    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if trigger.definition == "slack":
        envelope = _parse_slack_body(content_type, body)
        if envelope.get("type") == "url_verification":
            return PlainTextResponse(str(envelope.get("challenge", ""))), "accepted"
        sender_event_id = envelope.get("event_id")
    elif content_type != JSON:
        raise Rejection(415, "bad_request", f"unsupported content type; send {JSON}")
    else:
        _parse_json_object(body)
        sender_event_id = headers.get("webhook-id")
    if not trigger.active:
        return JSONResponse({"ok": True, "forwarded": False, "reason": "trigger paused"}), "paused"
    wait_s = trigger.inbound.take()
    if wait_s > 0:
        raise Rejection(
            429,
            "rate_limited",
            f"over this trigger's limit of {trigger.inbound.limit.per_second:g} requests/s",
            headers={"Retry-After": retry_after_header(wait_s)},
        )

    event = RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger.trigger_id,
        project_id=trigger.project_id,
        definition=trigger.definition,
        received_at=datetime.now(UTC),
        content_type=content_type,
        body=text,
        headers={name: headers[name] for name in KEPT_HEADERS if name in headers},
    )
    writer: RawEventWriter = request.app.state.raw_writer
    # The sender's id is what later stages call the event id; the record id ties retries apart.
    event_id = sender_event_id if isinstance(sender_event_id, str) else None
    with log_context(raw_id=event.id, event_id=event_id):
        try:
            await writer.write(event)
        except KafkaUnavailable as exc:
            log.warning(
                "raw event not stored; asking the sender to retry", extra={"error": str(exc)}
            )
            raise Rejection(503, "unavailable", "event not stored; retry later") from None
        log.info("accepted")
    return JSONResponse({"ok": True, "id": event.id}), _acceptance(request, trigger, event_id)


def _acceptance(request: Request, trigger: IngressTrigger, event_id: str | None) -> str:
    """`duplicate` when this process already stored the same sender id for this trigger."""
    if event_id is None:
        return "accepted"
    recent: RecentIds = request.app.state.recent_ids
    key = (trigger.trigger_id, event_id)
    if key in recent:
        return "duplicate"
    recent.remember(key)
    return "accepted"


async def _read_bounded(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise Rejection(413, "too_large", f"body exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    # Stream so that a sender lying about (or omitting) Content-Length cannot make us buffer
    # more than the limit.
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise Rejection(413, "too_large", f"body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_slack_body(content_type: str, body: bytes) -> dict[str, Any]:
    """The Slack envelope: a JSON body, or an interactivity form with a `payload` field."""
    if content_type == JSON:
        return _parse_json_object(body)
    if content_type == FORM:
        payload = parse_qs(body.decode()).get("payload")
        if not payload:
            raise Rejection(400, "bad_request", "form body has no `payload` field")
        return _parse_json_object(payload[0].encode())
    raise Rejection(415, "bad_request", f"unsupported content type; send {JSON} or {FORM}")


def _parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejection(400, "bad_request", f"malformed JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise Rejection(400, "bad_request", "expected a JSON object")
    return parsed
