"""Slack request signing (v0), verified on raw bytes with an injectable clock.

Knows nothing about HTTP frameworks: the route hands over the headers, the body and the secrets.
Several secrets may be valid at once while a signing secret is being rotated.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping

MAX_CLOCK_SKEW_S = 300


class SignatureRejected(Exception):
    """The request is not provably from Slack. The message is for logs, never for the caller."""


def verify_slack_signature(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str],
    now: Callable[[], float] = time.time,
) -> None:
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        raise SignatureRejected("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureRejected("non-numeric X-Slack-Request-Timestamp")
    if abs(now() - int(timestamp)) > MAX_CLOCK_SKEW_S:
        raise SignatureRejected("X-Slack-Request-Timestamp outside the 5-minute window")
    base = b"v0:" + timestamp.encode() + b":" + body
    presented = signature.encode()
    for secret in secrets:
        expected = b"v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(expected, presented):
            return
    raise SignatureRejected("signature does not match")
