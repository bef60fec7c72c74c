"""The github kind: GitHub's documented signature vector, envelopes, types and correlation."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from pydantic import ValidationError

from kinds.base import (
    FORM,
    JSON,
    Envelope,
    EnvelopeRejected,
    Ignored,
    Normalized,
    WebhookRequest,
)
from kinds.github import KIND as GITHUB
from runtime.signatures import SignatureRejected
from schemas.records import RawEvent

pytestmark = pytest.mark.unit

# GitHub's documented test vector ("Validating webhook deliveries").
VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
VECTOR_HEADERS = {"x-hub-signature-256": VECTOR_SIGNATURE}
# GitHub signs no timestamp: any time verifies.
NOW = 1_765_000_000.0

SECRET = "github-hook-secret"
ISSUE_OPENED = {
    "action": "opened",
    "issue": {"number": 7, "title": "Crash on start"},
    "repository": {"full_name": "octo/app"},
    "sender": {"login": "mona"},
}


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_the_documented_vector_verifies() -> None:
    GITHUB.verify(WebhookRequest(VECTOR_HEADERS, VECTOR_BODY), [VECTOR_SECRET], NOW)


@pytest.mark.parametrize(
    ("headers", "body", "secrets", "reason"),
    [
        ({}, VECTOR_BODY, [VECTOR_SECRET], "missing_headers"),
        ({"x-hub-signature-256": VECTOR_SIGNATURE}, b"Hello, World?", [VECTOR_SECRET], "mismatch"),
        ({"x-hub-signature-256": VECTOR_SIGNATURE}, VECTOR_BODY, ["another secret"], "mismatch"),
        # The SHA-1 header form, and the digest without its prefix, are not accepted.
        ({"x-hub-signature-256": VECTOR_SIGNATURE[7:]}, VECTOR_BODY, [VECTOR_SECRET], "mismatch"),
        ({"x-hub-signature-256": "sha1=" + "0" * 40}, VECTOR_BODY, [VECTOR_SECRET], "mismatch"),
    ],
)
def test_requests_not_signed_with_the_secret_are_refused(
    headers: dict[str, str], body: bytes, secrets: list[str], reason: str
) -> None:
    with pytest.raises(SignatureRejected) as rejected:
        GITHUB.verify(WebhookRequest(headers, body), secrets, NOW)
    assert rejected.value.reason == reason


def test_the_previous_secret_verifies_during_rotation() -> None:
    body = orjson.dumps(ISSUE_OPENED)
    headers = {"x-hub-signature-256": signature(body, "old")}
    GITHUB.verify(WebhookRequest(headers, body), [SECRET, "old"], NOW)
    assert GITHUB.signing_secrets == ("GITHUB_WEBHOOK_SECRET", "GITHUB_WEBHOOK_SECRET_PREVIOUS")


def github_headers(event: str = "issues", delivery: str = "d-1") -> dict[str, str]:
    return {"x-github-event": event, "x-github-delivery": delivery}


def test_the_delivery_header_is_the_event_id_in_json_and_form_bodies() -> None:
    body = orjson.dumps(ISSUE_OPENED)
    form = urlencode({"payload": body.decode()}).encode()
    assert GITHUB.parse(WebhookRequest(github_headers(), body, JSON)) == Envelope(
        "d-1", "X-GitHub-Delivery"
    )
    assert GITHUB.parse(WebhookRequest(github_headers(), form, FORM)) == Envelope(
        "d-1", "X-GitHub-Delivery"
    )


@pytest.mark.parametrize(
    ("content_type", "headers", "body", "status", "message"),
    [
        ("text/plain", github_headers(), b"{}", 415, "unsupported content type"),
        (JSON, {"x-github-delivery": "d-1"}, b"{}", 400, "X-GitHub-Event"),
        (JSON, {"x-github-event": "push"}, b"{}", 400, "X-GitHub-Delivery"),
        (JSON, github_headers(), b"[1]", 400, "JSON object"),
        (FORM, github_headers(), b"other=1", 400, "payload"),
    ],
)
def test_envelopes_that_are_no_event_are_refused_with_the_reason(
    content_type: str, headers: dict[str, str], body: bytes, status: int, message: str
) -> None:
    with pytest.raises(EnvelopeRejected, match=message) as rejected:
        GITHUB.parse(WebhookRequest(headers, body, content_type))
    assert rejected.value.status == status


def raw(payload: dict[str, Any], event: str = "issues", delivery: str = "d-1") -> RawEvent:
    return RawEvent(
        id="raw-1",
        trigger_id="t1",
        project_id="p1",
        definition="github",
        received_at=datetime(2026, 12, 1, tzinfo=UTC),
        content_type=JSON,
        body=orjson.dumps(payload).decode(),
        headers={"x-github-event": event, "x-github-delivery": delivery},
    )


def test_an_issue_event_is_typed_by_event_and_action_and_correlated_by_number() -> None:
    event = GITHUB.normalize(raw(ISSUE_OPENED), None)
    assert isinstance(event, Normalized)
    assert (event.event_id, event.event_type, event.correlation_id) == (
        "d-1",
        "issues.opened",
        "octo/app#7",
    )
    assert event.fields["github_event"] == "issues"
    assert event.fields["issue"]["title"] == "Crash on start"


@pytest.mark.parametrize(
    ("event", "payload", "event_type", "correlation"),
    [
        # A pull request's own events carry its number at the top level too.
        (
            "pull_request",
            {"action": "closed", "number": 12, "repository": {"full_name": "octo/app"}},
            "pull_request.closed",
            "octo/app#12",
        ),
        (
            "pull_request_review",
            {
                "action": "submitted",
                "pull_request": {"number": 3},
                "repository": {"full_name": "o/r"},
            },
            "pull_request_review.submitted",
            "o/r#3",
        ),
        (
            "push",
            {"ref": "refs/heads/main", "repository": {"full_name": "octo/app"}},
            "push",
            "octo/app",
        ),
        # Organization events have no repository: each delivery is its own stream.
        ("organization", {"action": "member_added"}, "organization.member_added", "d-1"),
    ],
)
def test_correlation_falls_back_from_the_number_to_the_repository(
    event: str, payload: dict[str, Any], event_type: str, correlation: str
) -> None:
    normalized = GITHUB.normalize(raw(payload, event), None)
    assert isinstance(normalized, Normalized)
    assert (normalized.event_type, normalized.correlation_id) == (event_type, correlation)


def test_ping_is_recorded_as_ignored() -> None:
    ignored = GITHUB.normalize(raw({"zen": "Design for failure.", "hook_id": 1}, "ping"), None)
    assert isinstance(ignored, Ignored)
    assert ignored.event_id == "d-1"
    assert "ping" in ignored.reason


def test_config_takes_any_event_type_names_once_and_a_cel_filter() -> None:
    config = {"event_types": ["issues.opened", "push"], "filter": "event.action != 'deleted'"}
    assert GITHUB.validate_config(config) == config
    assert GITHUB.validate_config({}) == {}
    with pytest.raises(ValidationError, match="once"):
        GITHUB.validate_config({"event_types": ["push", "push"]})
    with pytest.raises(ValidationError, match="line 1"):
        GITHUB.validate_config({"filter": "event.action =="})
