"""GitHub webhooks: `X-Hub-Signature-256` (`sha256=` HMAC over the raw body).

The event id is `X-GitHub-Delivery`, the same on a redelivery; the event type is
`X-GitHub-Event` plus the body's `action` (`issues.opened`). `ping`, sent when a hook is
created, is answered and recorded as ignored. Correlation: the repository plus the issue or
pull-request number, else the repository, so one thread's events arrive in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field

from kinds.base import (
    FORM,
    JSON,
    Envelope,
    EnvelopeRejected,
    Expression,
    Handshake,
    Ignored,
    Normalized,
    UnroutableEvent,
    WebhookKind,
    WebhookRequest,
    content_types,
    envelope_object,
    form_payload,
    raw_object,
    text_of,
)
from kinds.config import BoolExpression, ConfigModel, OpenEventTypes, RateLimitConfig
from runtime.signatures import SignatureRejected, hmac_sha256, matches_any
from schemas.records import RawEvent

SIGNATURE_PREFIX = "sha256="


class GitHubConfig(ConfigModel):
    event_types: OpenEventTypes | None = None
    filter: BoolExpression | None = Field(
        default=None,
        description="CEL over `event` (the payload, plus `github_event` and "
        "`github_delivery`); must yield bool.",
    )
    rate_limit: RateLimitConfig | None = None


def _number(payload: dict[str, Any]) -> int | None:
    for holder in (payload.get("issue"), payload.get("pull_request"), payload):
        if isinstance(holder, dict):
            number = holder.get("number")
            if isinstance(number, int) and not isinstance(number, bool):
                return number
    return None


def correlation_of(payload: dict[str, Any]) -> str | None:
    repository = payload.get("repository")
    name = text_of(repository.get("full_name")) if isinstance(repository, dict) else None
    if name is None:
        return None
    number = _number(payload)
    return name if number is None else f"{name}#{number}"


class GitHub(WebhookKind):
    slug = "github"
    title = "GitHub webhooks"
    description = "Repository and organization events from GitHub, verified with the hook secret."
    config_model = GitHubConfig
    required_secrets = ("GITHUB_WEBHOOK_SECRET",)
    verification = "github_sha256"
    kept_headers = ("x-github-event", "x-github-delivery", "x-github-hook-id")

    def verify(self, request: WebhookRequest, secrets: Iterable[str], now: float) -> None:
        signature = request.headers.get("x-hub-signature-256")
        if not signature:
            raise SignatureRejected("missing_headers", "missing X-Hub-Signature-256")
        presented = [signature.encode()]
        for secret in secrets:
            expected = SIGNATURE_PREFIX + hmac_sha256(secret.encode(), request.body).hex()
            if matches_any(expected.encode(), presented):
                return
        raise SignatureRejected("mismatch", "signature does not match")

    def parse(self, request: WebhookRequest) -> Envelope | Handshake:
        content_types(request.content_type, JSON, FORM)
        if not request.headers.get("x-github-event"):
            raise EnvelopeRejected(400, "missing X-GitHub-Event header")
        delivery = request.headers.get("x-github-delivery")
        if not delivery:
            raise EnvelopeRejected(400, "missing X-GitHub-Delivery header")
        body = request.body
        envelope_object(form_payload(body) if request.content_type == FORM else body)
        return Envelope(delivery, "X-GitHub-Delivery")

    def normalize(self, raw: RawEvent, correlation: Expression | None) -> Normalized | Ignored:
        event = raw.headers.get("x-github-event")
        if not event:
            raise UnroutableEvent("no X-GitHub-Event header was stored with the event")
        delivery = raw.headers.get("x-github-delivery") or raw.id
        if event == "ping":
            return Ignored(delivery, "ping: GitHub checking the hook; nothing to deliver")
        payload = raw_object(raw)
        action = text_of(payload.get("action"))
        fields = {**payload, "github_event": event, "github_delivery": delivery}
        return Normalized(
            event_id=delivery,
            event_type=f"{event}.{action}" if action else event,
            correlation_id=correlation_of(payload) or delivery,
            time=raw.received_at,
            fields=fields,
            data=fields,
        )


KIND = GitHub()
