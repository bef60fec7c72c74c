"""Stripe webhooks: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, 300 s tolerance.

The signed content is `{t}.{body}`, HMAC-SHA256 keyed with the endpoint secret as written
(`whsec_...`). The event id and type come from the body; an event is retried with the same id.
Correlation: `data.object.id`, so one object's events (a payment intent's lifecycle) arrive in
order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from kinds.base import (
    JSON,
    Envelope,
    EnvelopeRejected,
    Expression,
    Handshake,
    Ignored,
    Normalized,
    WebhookKind,
    WebhookRequest,
    content_types,
    envelope_object,
    raw_object,
    text_of,
)
from kinds.config import BoolExpression, ConfigModel, OpenEventTypes, RateLimitConfig
from runtime.signatures import SignatureRejected, check_timestamp, hmac_sha256, matches_any
from schemas.records import RawEvent

TOLERANCE_S = 300
WHSEC_PREFIX = "whsec_"
HEADER = "Stripe-Signature"
# A `created` past this is no Unix time (and would overflow datetime); the event keeps its
# arrival time instead.
MAX_UNIX_SECONDS = 10**11


class StripeConfig(ConfigModel):
    event_types: OpenEventTypes | None = None
    filter: BoolExpression | None = Field(
        default=None, description="CEL over `event` (the Stripe event); must yield bool."
    )
    rate_limit: RateLimitConfig | None = None


def _signature_parts(header: str) -> tuple[str | None, list[bytes]]:
    """The timestamp and the `v1` signatures of a Stripe-Signature header."""
    timestamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value.encode())
    return timestamp, signatures


def _object_id(event: dict[str, Any]) -> str | None:
    data = event.get("data")
    thing = data.get("object") if isinstance(data, dict) else None
    return text_of(thing.get("id")) if isinstance(thing, dict) else None


class Stripe(WebhookKind):
    slug = "stripe"
    title = "Stripe webhooks"
    description = "Events from a Stripe webhook endpoint, verified with its signing secret."
    config_model = StripeConfig
    required_secrets = ("STRIPE_WEBHOOK_SECRET",)
    verification = "stripe_v1"

    def secret_problem(self, name: str, value: str) -> str | None:
        if name in self.signing_secrets and not value.startswith(WHSEC_PREFIX):
            return (
                f"Stripe endpoint signing secrets start with {WHSEC_PREFIX} (the endpoint's "
                "page in the Stripe Dashboard); an API key is not one"
            )
        return None

    def verify(self, request: WebhookRequest, secrets: Iterable[str], now: float) -> None:
        header = request.headers.get("stripe-signature")
        if not header:
            raise SignatureRejected("missing_headers", f"missing {HEADER}")
        timestamp, presented = _signature_parts(header)
        if timestamp is None:
            raise SignatureRejected("malformed_timestamp", f"{HEADER} has no t=")
        check_timestamp(timestamp, f"{HEADER} t", now, TOLERANCE_S)
        signed = timestamp.encode() + b"." + request.body
        for secret in secrets:
            if matches_any(hmac_sha256(secret.encode(), signed).hex().encode(), presented):
                return
        raise SignatureRejected("mismatch", "no v1 signature matches")

    def parse(self, request: WebhookRequest) -> Envelope | Handshake:
        content_types(request.content_type, JSON)
        event = envelope_object(request.body)
        event_id, event_type = text_of(event.get("id")), text_of(event.get("type"))
        if not event_id or not event_type:
            raise EnvelopeRejected(400, "a Stripe event has string `id` and `type` fields")
        return Envelope(event_id, "id")

    def normalize(self, raw: RawEvent, correlation: Expression | None) -> Normalized | Ignored:
        event = raw_object(raw)
        event_id = text_of(event.get("id")) or raw.id
        created = event.get("created")
        return Normalized(
            event_id=event_id,
            event_type=text_of(event.get("type")) or "unknown",
            correlation_id=_object_id(event) or event_id,
            time=(
                datetime.fromtimestamp(created, UTC)
                if type(created) is int and 0 < created < MAX_UNIX_SECONDS
                else raw.received_at
            ),
            fields=event,
            data=event,
        )


KIND = Stripe()
