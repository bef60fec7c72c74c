"""Signature checks against independent implementations: slack_sdk and standardwebhooks."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from slack_sdk.signature import SignatureVerifier
from standardwebhooks.webhooks import Webhook

from kinds.base import WebhookRequest
from kinds.slack import KIND as SLACK
from runtime.signatures import SignatureRejected
from runtime.standard_webhooks import verify as verify_standard_signature

pytestmark = pytest.mark.unit

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BODY = b'{"type":"event_callback","event_id":"Ev1","event":{"type":"message","text":"hi \xc3\xa9"}}'


def slack_headers(body: bytes, secret: str = SLACK_SECRET, at: int | None = None) -> dict[str, str]:
    timestamp = str(at if at is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature}


def test_slack_accepts_a_signature_made_by_slack_sdk() -> None:
    SLACK.verify(WebhookRequest(slack_headers(BODY), BODY), [SLACK_SECRET], time.time())


def test_slack_accepts_the_previous_secret_during_rotation() -> None:
    SLACK.verify(
        WebhookRequest(slack_headers(BODY, "old-secret"), BODY),
        [SLACK_SECRET, "old-secret"],
        time.time(),
    )


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"x-slack-signature": "v0=00"}, "missing"),
        ({"x-slack-request-timestamp": "soon", "x-slack-signature": "v0=00"}, "non-numeric"),
        ({"x-slack-request-timestamp": "١٢٣", "x-slack-signature": "v0=00"}, "non-numeric"),
    ],
)
def test_slack_rejects_malformed_headers(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureRejected, match=reason):
        SLACK.verify(WebhookRequest(headers, BODY), [SLACK_SECRET], time.time())


@pytest.mark.parametrize("digits", [13, 400, 5000])
def test_slack_rejects_a_timestamp_too_long_for_unix_seconds(digits: int) -> None:
    # Signed by slack_sdk over the long timestamp: only the timestamp check can refuse it, and
    # it must do so before int() or float arithmetic fails on it.
    timestamp = "9" * digits
    signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=timestamp, body=BODY)
    assert signature is not None
    headers = {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature}
    with pytest.raises(SignatureRejected, match=f"{digits} digits") as rejected:
        SLACK.verify(WebhookRequest(headers, BODY), [SLACK_SECRET], time.time())
    assert rejected.value.reason == "malformed_timestamp"


def test_slack_rejects_a_tampered_body() -> None:
    with pytest.raises(SignatureRejected, match="does not match"):
        SLACK.verify(WebhookRequest(slack_headers(BODY), BODY + b" "), [SLACK_SECRET], time.time())


@pytest.mark.parametrize("skew", [-301, 301])
def test_slack_rejects_timestamps_outside_five_minutes(skew: int) -> None:
    now = 1_700_000_000
    headers = slack_headers(BODY, at=now + skew)
    with pytest.raises(SignatureRejected, match="window"):
        SLACK.verify(WebhookRequest(headers, BODY), [SLACK_SECRET], now)


def test_slack_accepts_timestamps_at_the_edge_of_the_window() -> None:
    now = 1_700_000_000
    SLACK.verify(WebhookRequest(slack_headers(BODY, at=now - 300), BODY), [SLACK_SECRET], now)


WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def standard_headers(
    body: bytes, secret: str = WEBHOOK_SECRET, msg_id: str = "msg_1"
) -> dict[str, str]:
    timestamp = int(time.time())
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_standard_webhooks_accepts_a_signature_made_by_the_reference_package() -> None:
    verify_standard_signature(standard_headers(BODY), BODY, [WEBHOOK_SECRET], time.time())


def test_standard_webhooks_accepts_one_matching_entry_among_several() -> None:
    headers = standard_headers(BODY)
    headers["webhook-signature"] = "v1,bm90LWl0 v2,ignored " + headers["webhook-signature"]
    verify_standard_signature(headers, BODY, [WEBHOOK_SECRET], time.time())


@pytest.mark.parametrize("digits", [13, 400, 5000])
def test_standard_webhooks_rejects_a_timestamp_too_long_for_unix_seconds(digits: int) -> None:
    headers = {**standard_headers(BODY), "webhook-timestamp": "1" * digits}
    with pytest.raises(SignatureRejected, match=f"{digits} digits") as rejected:
        verify_standard_signature(headers, BODY, [WEBHOOK_SECRET], time.time())
    assert rejected.value.reason == "malformed_timestamp"


def test_standard_webhooks_rejects_another_secret() -> None:
    other = "whsec_" + base64.b64encode(b"another-secret-another-secret!!!").decode()
    with pytest.raises(SignatureRejected):
        verify_standard_signature(
            standard_headers(BODY, other), BODY, [WEBHOOK_SECRET], time.time()
        )


def test_standard_webhooks_rejects_a_replayed_id_with_a_new_body() -> None:
    headers = standard_headers(BODY)
    with pytest.raises(SignatureRejected):
        verify_standard_signature(headers, b'{"changed":true}', [WEBHOOK_SECRET], time.time())


def test_standard_webhooks_skips_a_malformed_stored_secret() -> None:
    verify_standard_signature(
        standard_headers(BODY), BODY, ["whsec_%%%", WEBHOOK_SECRET], time.time()
    )
