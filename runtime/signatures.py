"""What every webhook signature check shares: the rejection, the timestamp rule, and HMAC.

Framework-free, on raw bytes with an injectable clock. A verifier takes several secrets, since
more than one is valid while a signing secret is being rotated.
"""

from __future__ import annotations

import hmac
from typing import Literal

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
        raise SignatureRejected(
            "stale_timestamp", f"{header} outside the {tolerance_s:g}-second window"
        )


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    # The one-shot form runs in OpenSSL without building an HMAC object.
    return hmac.digest(key, message, "sha256")


def matches_any(expected: bytes, presented: list[bytes]) -> bool:
    """Constant-time comparison of one expected signature with each presented one."""
    return any(hmac.compare_digest(expected, candidate) for candidate in presented)
