"""Standard Webhooks signatures: `webhook-id`, `webhook-timestamp`, `webhook-signature`.

Works on raw bytes with an injectable clock, like the Slack verifier. Secrets use the
`whsec_<base64>` form; the signature header may carry several space-separated `v1,<base64>`
entries, one of which has to match one of the trigger's valid secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping

from ingest.slack_signature import SignatureRejected, check_timestamp

TOLERANCE_S = 5 * 60
WHSEC_PREFIX = "whsec_"


def decode_secret(secret: str) -> bytes:
    encoded = secret.removeprefix(WHSEC_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("webhook secrets look like whsec_<base64>") from None


def verify_standard_signature(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str],
    now: Callable[[], float] = time.time,
) -> None:
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise SignatureRejected(
            "missing_headers", "missing webhook-id, webhook-timestamp or webhook-signature"
        )
    check_timestamp(timestamp, "webhook-timestamp", now(), TOLERANCE_S)
    presented = [
        sig.encode()
        for version, _, sig in (e.partition(",") for e in signatures.split())
        if version == "v1"
    ]
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    for secret in secrets:
        try:
            key = decode_secret(secret)
        except ValueError:
            # A malformed stored secret can never verify anything; other secrets still may.
            continue
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        expected = base64.b64encode(digest)
        if any(hmac.compare_digest(expected, candidate) for candidate in presented):
            return
    raise SignatureRejected("mismatch", "no signature matches")
