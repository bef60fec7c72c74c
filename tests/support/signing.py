"""Request headers signed the way Slack and Standard Webhooks senders sign, with their own SDKs.

Signatures come from the senders' libraries rather than from Triggerline's verifiers, so a test
cannot pass because the verifier and the signer share a mistake.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

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
