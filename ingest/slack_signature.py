"""Slack request signing (v0), verified on raw bytes with an injectable clock.

Knows nothing about HTTP frameworks: the route hands over the headers, the body and the secrets.
Several secrets may be valid at once while a signing secret is being rotated. The rejection and
the timestamp check are shared with the Standard Webhooks verifier.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

MAX_CLOCK_SKEW_S = 300
# Unix seconds have 10 digits until the year 2286. Anything longer is refused before int()
# sees it: 5,000 digits exceed int()'s own limit, and 400 overflow float arithmetic.
MAX_TIMESTAMP_DIGITS = 12

# Why a request was refused, as a bounded metric label.
RejectionReason = Literal["missing_headers", "malformed_timestamp", "stale_timestamp", "mismatch"]


class SignatureRejected(Exception):
    """The request is not provably from its sender. The message is for logs, never for the
    caller."""

    def __init__(self, reason: RejectionReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: RejectionReason = reason


def check_timestamp(timestamp: str, header: str, now: float, tolerance_s: float) -> None:
    """Refuse a timestamp that is not Unix seconds, or further than `tolerance_s` from `now`."""
    # isascii: str.isdigit() also accepts digits int() refuses, such as "²".
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureRejected("malformed_timestamp", f"non-numeric {header}")
    if len(timestamp) > MAX_TIMESTAMP_DIGITS:
        raise SignatureRejected(
            "malformed_timestamp", f"{header} of {len(timestamp)} digits is no Unix time"
        )
    if abs(now - int(timestamp)) > tolerance_s:
        raise SignatureRejected("stale_timestamp", f"{header} outside the 5-minute window")


def verify_slack_signature(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str],
    now: Callable[[], float] = time.time,
) -> None:
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        raise SignatureRejected(
            "missing_headers", "missing X-Slack-Request-Timestamp or X-Slack-Signature"
        )
    check_timestamp(timestamp, "X-Slack-Request-Timestamp", now(), MAX_CLOCK_SKEW_S)
    base = b"v0:" + timestamp.encode() + b":" + body
    presented = signature.encode()
    for secret in secrets:
        expected = b"v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(expected, presented):
            return
    raise SignatureRejected("mismatch", "signature does not match")
