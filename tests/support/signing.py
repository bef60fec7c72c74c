"""Request headers signed the way Slack, Standard Webhooks and Stripe senders sign.

Signatures come from the senders' libraries, or are checked with them, rather than from
Triggerline's verifiers, so a test cannot pass because the verifier and the signer share a
mistake.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime

import stripe
from slack_sdk.signature import SignatureVerifier
from standardwebhooks import Webhook

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def slack_headers(
    body: bytes, secret: str, *, timestamp: str | None = None, content_type: str = JSON
) -> dict[str, str]:
    """Slack's v0 signature over `body` at `timestamp` (now, unless given)."""
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": signature,
    }


def standard_webhook_headers(
    body: bytes, secret: str, *, msg_id: str | None = None
) -> dict[str, str]:
    """A Standard Webhooks v1 signature over `body` under the sender's `msg_id` (a fresh one,
    unless given), signed now."""
    msg_id = f"msg_{uuid.uuid4().hex}" if msg_id is None else msg_id
    now = datetime.now(UTC)
    signature: str = Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "content-type": JSON,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def stripe_headers(body: bytes, secret: str, *rolled_out: str) -> dict[str, str]:
    """A Stripe-Signature header made here, the way Stripe signs while a secret is rolled: one
    `v1` per secret. Stripe's own verifier must accept it, or the test's premise is wrong."""
    timestamp = int(time.time())
    signed = f"{timestamp}.".encode() + body
    entries = [
        "v1=" + hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
        for key in (*rolled_out, secret)
    ]
    header = ",".join([f"t={timestamp}", *entries])
    assert stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance=300)
    return {"content-type": JSON, "stripe-signature": header}
