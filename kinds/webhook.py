"""Any sender that signs with Standard Webhooks and a per-trigger `whsec_` secret.

The event id is the `webhook-id` header. Correlation is the trigger's `correlation` CEL
expression over the body, else the webhook-id (each event its own stream).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from kinds.base import (
    JSON,
    Envelope,
    Expression,
    Handshake,
    Ignored,
    Normalized,
    WebhookKind,
    WebhookRequest,
    content_types,
    envelope_object,
    raw_object,
)
from kinds.config import BoolExpression, ConfigModel, RateLimitConfig, StringExpression
from runtime import standard_webhooks
from runtime.cel import CelEvaluationError
from schemas.records import RawEvent


class WebhookConfig(ConfigModel):
    filter: BoolExpression | None = Field(
        default=None, description="CEL over `event` (the JSON body); must yield bool."
    )
    correlation: StringExpression | None = Field(
        default=None,
        description="CEL over `event` yielding the correlation id, which orders deliveries.",
    )
    rate_limit: RateLimitConfig | None = None


class Webhook(WebhookKind):
    slug = "webhook"
    title = "Signed webhook"
    description = "Any sender that signs with Standard Webhooks and a per-trigger secret."
    config_model = WebhookConfig
    required_secrets = ("WEBHOOK_SECRET",)
    verification = "standard_webhooks"
    kept_headers = ("webhook-id",)

    def secret_problem(self, name: str, value: str) -> str | None:
        if name in self.signing_secrets and not standard_webhooks.is_secret(value):
            return f"this secret looks like {standard_webhooks.SECRET_FORMAT}"
        return None

    def verify(self, request: WebhookRequest, secrets: Iterable[str], now: float) -> None:
        standard_webhooks.verify(request.headers, request.body, secrets, now)

    def parse(self, request: WebhookRequest) -> Envelope | Handshake:
        content_types(request.content_type, JSON)
        envelope_object(request.body)
        return Envelope(request.headers.get("webhook-id"), "webhook-id")

    def normalize(self, raw: RawEvent, correlation: Expression | None) -> Normalized | Ignored:
        webhook_id = raw.headers.get("webhook-id") or raw.id
        # The sender's body, plus its webhook-id; the id wins over a body field of that name.
        fields = {**raw_object(raw), "webhook_id": webhook_id}
        correlation_id, note = webhook_id, None
        if correlation is not None:
            try:
                correlation_id = str(correlation.evaluate(fields)) or webhook_id
            except CelEvaluationError as exc:
                # Ordering by webhook-id still delivers the event; the note says why it is
                # not grouped.
                note = f"correlation expression failed; using webhook-id: {exc}"
        return Normalized(
            event_id=webhook_id,
            event_type="received",
            correlation_id=correlation_id,
            time=raw.received_at,
            fields=fields,
            data=fields,
            note=note,
        )


KIND = Webhook()
