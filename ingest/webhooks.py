"""Webhook ingress: verify, bound, and hand off to Kafka before answering 2xx.

Framework-free: `WebhookIngress.receive` takes a trigger id, the headers and the body as it
arrives, and returns an `Answer`; ingest/webhook_route.py adapts it to ASGI.

The order of checks is deliberate: find the trigger (404), read at most the size limit (413),
verify the signature before looking at the content (401), then parse (415, 400, which includes
an event id over its bound). Only a request proven to come from the sender can spend the
trigger's rate budget (429), so forgeries cannot push a real sender's events into 429s.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import orjson
from prometheus_client import Counter

from ingest.handoff import KafkaUnavailable, RawEventWriter, RecordTooLarge
from ingest.rate_limit import retry_after_header
from ingest.recent_ids import RecentIds
from ingest.refusal_log import RefusalLog
from ingest.triggers import IngressTrigger
from kinds.base import JSON, EnvelopeRejected, Handshake, WebhookKind, WebhookRequest
from runtime.logging import OutcomeLog
from runtime.metrics import INGEST_IN_FLIGHT, INGEST_REQUESTS
from runtime.settings import Settings
from runtime.signatures import SignatureRejected
from schemas.records import RawEvent

log = logging.getLogger("triggerline.ingest")

# Headers replay and audit need, with those the trigger's kind keeps for normalizing; the rest
# (cookies, auth, signatures) stays behind.
KEPT_HEADERS = ("content-type", "user-agent")
PAUSED = orjson.dumps({"ok": True, "forwarded": False, "reason": "trigger paused"})


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    # The metrics outcome: accepted, duplicate, unauthorized, not_found, paused, too_large,
    # rate_limited, unavailable, bad_request or error.
    outcome: str
    media_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


# What a sender gets when handling its request failed unexpectedly (a bug): it retries later.
FAILED = Answer(500, orjson.dumps({"error": "internal error; retry later"}), "error")


class ClientDisconnected(Exception):
    """The sender went away before its body arrived; there is no one left to answer."""


class Rejection(Exception):
    """Control flow inside `receive`: every rejection becomes an `Answer`, never escapes."""

    def __init__(
        self, status: int, outcome: str, message: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.answer = Answer(status, orjson.dumps({"error": message}), outcome, headers=headers)


class IngressTriggers(Protocol):
    """The trigger-config view, as ingress uses it."""

    def get(self, trigger_id: str) -> IngressTrigger | None: ...

    def unusable(self, trigger_id: str) -> str | None: ...


class WebhookIngress:
    def __init__(
        self,
        view: IngressTriggers,
        writer: RawEventWriter,
        settings: Settings,
        refusals: RefusalLog,
    ) -> None:
        self._view = view
        self._writer = writer
        self._max_body_bytes = settings.ingest.max_body_bytes
        self._max_event_id_length = settings.ingest.max_event_id_length
        self._recent_ids = RecentIds(
            settings.ingest.recent_ids_max, settings.ingest.recent_ids_retention_s
        )
        self._refusals = refusals
        self._outcomes = OutcomeLog(log, settings.log_event_lines_per_s)
        # (definition, outcome) -> its series, looked up once: both labels are bounded (the
        # kinds and the outcomes), and `labels()` takes a lock and builds a key per call.
        self._requests: dict[tuple[str, str], Counter] = {}

    async def receive(
        self, trigger_id: str, headers: Mapping[str, str], body: AsyncIterator[bytes]
    ) -> Answer:
        trigger = self._view.get(trigger_id)
        INGEST_IN_FLIGHT.inc()
        try:
            answer = await self._handle(trigger_id, trigger, headers, body)
        except Rejection as rejection:
            answer = rejection.answer
        except ClientDisconnected:
            raise
        except Exception:
            # Counted like every other answer, so that an alert sees it.
            log.exception("webhook request failed", extra={"trigger_id": trigger_id})
            answer = FAILED
        finally:
            INGEST_IN_FLIGHT.dec()
        if answer.status != 200 or answer.outcome == "paused":
            # Accepted events are logged where their ids are known. The message is left out:
            # some echo what the sender sent.
            self._outcomes.outcome(answer.outcome, trigger_id=trigger_id, status=answer.status)
        key = (trigger.definition if trigger else "unknown", answer.outcome)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = INGEST_REQUESTS.labels(*key)
        counter.inc()
        return answer

    def _receiving(
        self, trigger_id: str, trigger: IngressTrigger | None
    ) -> tuple[IngressTrigger, WebhookKind]:
        """The trigger and its kind, if it takes webhooks; otherwise the rejection saying why."""
        if trigger is None and self._view.unusable(trigger_id) is not None:
            # The trigger exists, but this deployment cannot use its config (say, a secret
            # under a key it has not loaded): the sender retries a 503 once that is fixed.
            raise Rejection(
                503, "unavailable", "this trigger cannot be served right now; retry later"
            )
        if trigger is None or trigger.kind is None:
            raise Rejection(404, "not_found", "no webhook trigger with this id")
        return trigger, trigger.kind

    async def _handle(
        self,
        trigger_id: str,
        trigger: IngressTrigger | None,
        headers: Mapping[str, str],
        body_chunks: AsyncIterator[bytes],
    ) -> Answer:
        trigger, kind = self._receiving(trigger_id, trigger)
        body = await self._read_bounded(headers, body_chunks)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        request = WebhookRequest(headers, body, content_type)
        try:
            kind.verify(request, trigger.signing_secrets, time.time())
        except SignatureRejected as exc:
            # The reason is for operators (counted, and logged a few lines at a time); the
            # caller learns nothing it could use.
            self._refusals.refused(trigger.definition, exc.reason, str(exc), trigger_id=trigger_id)
            raise Rejection(401, "unauthorized", "invalid request signature") from None
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise Rejection(400, "bad_request", "body is not valid UTF-8") from None

        try:
            envelope = kind.parse(request)
        except EnvelopeRejected as exc:
            raise Rejection(exc.status, "bad_request", exc.message) from None
        if isinstance(envelope, Handshake):
            return Answer(200, envelope.body, "accepted", media_type=envelope.media_type)
        # The sender's id is what later stages call the event id; the record id tells retries
        # apart.
        event_id = envelope.event_id
        if event_id is not None and len(event_id) > self._max_event_id_length:
            raise Rejection(
                400,
                "bad_request",
                f"event id ({envelope.event_id_source}) of {len(event_id)} characters is over "
                f"the limit of {self._max_event_id_length} "
                "(TRIGGERLINE_INGEST_MAX_EVENT_ID_LENGTH)",
            )
        if not trigger.active:
            return Answer(200, PAUSED, "paused")
        wait_s = trigger.inbound.take()
        if wait_s > 0:
            raise Rejection(
                429,
                "rate_limited",
                f"over this trigger's limit of {trigger.inbound.limit.per_second:g} requests/s",
                headers=(("retry-after", retry_after_header(wait_s)),),
            )

        event = RawEvent(
            id=uuid.uuid4().hex,
            trigger_id=trigger.trigger_id,
            project_id=trigger.project_id,
            definition=trigger.definition,
            received_at=datetime.now(UTC),
            content_type=content_type,
            body=text,
            headers={
                name: headers[name]
                for names in (KEPT_HEADERS, kind.kept_headers)
                for name in names
                if name in headers
            },
        )
        ids = {"trigger_id": trigger_id, "raw_id": event.id, "event_id": event_id}
        try:
            trace_id = await self._writer.write(event, headers)
        except KafkaUnavailable as exc:
            log.warning(
                "raw event not stored; asking the sender to retry",
                extra={**ids, "error": str(exc)},
            )
            raise Rejection(503, "unavailable", "event not stored; retry later") from None
        except RecordTooLarge:
            raise Rejection(
                413, "too_large", "event too large to store once JSON-escaped; send less"
            ) from None
        outcome = self._acceptance(trigger_id, event_id)
        self._outcomes.outcome(
            outcome, **(ids if trace_id is None else {**ids, "trace_id": trace_id})
        )
        accepted = orjson.dumps({"ok": True, "id": event.id})
        return Answer(200, accepted, outcome)

    def _acceptance(self, trigger_id: str, event_id: str | None) -> str:
        """`duplicate` when this process already stored the same sender id for this trigger."""
        if event_id is None:
            return "accepted"
        key = (trigger_id, event_id)
        if key in self._recent_ids:
            return "duplicate"
        self._recent_ids.remember(key)
        return "accepted"

    async def _read_bounded(
        self, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
    ) -> bytes:
        limit = self._max_body_bytes
        declared = headers.get("content-length")
        # isascii: str.isdigit() also accepts digits int() refuses, such as "²".
        if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise Rejection(413, "too_large", f"body exceeds {limit} bytes")
        received: list[bytes] = []
        size = 0
        # Count what arrives, so that a sender lying about (or omitting) Content-Length cannot
        # make us buffer more than the limit.
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise Rejection(413, "too_large", f"body exceeds {limit} bytes")
            received.append(chunk)
        return b"".join(received)
