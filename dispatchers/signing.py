"""Standard Webhooks signing for http targets: webhook-id, webhook-timestamp, webhook-signature.

The signed content is `{id}.{timestamp}.{body}`, HMAC-SHA256 with the base64-decoded `whsec_`
secret, sent as `v1,<base64>`. The id is the event id, identical on every retry, so the receiver
can deduplicate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

WHSEC_PREFIX = "whsec_"


class BadSigningSecret(ValueError):
    pass


def decode_signing_secret(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(WHSEC_PREFIX), validate=True)
    except binascii.Error:
        raise BadSigningSecret("target signing secrets look like whsec_<base64>") from None


def webhook_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }
