"""Standard Webhooks, both ways: ingest verifies with it, dispatchers sign with it, and the
registry checks secrets with it.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256 with the
base64-decoded `whsec_` secret, sent as `v1,<base64>`. A signature header may carry several
space-separated entries; one of them has to match one of the valid secrets.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping

from runtime.signatures import SignatureRejected, check_timestamp, hmac_sha256, matches_any

TOLERANCE_S = 5 * 60
WHSEC_PREFIX = "whsec_"
SECRET_FORMAT = f"{WHSEC_PREFIX}<base64>"


class BadSecret(ValueError):
    """A secret that is not `whsec_<base64>` of at least one byte: it can sign nothing."""


def decode_secret(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix(WHSEC_PREFIX), validate=True)
    except binascii.Error:
        key = b""
    if not secret.startswith(WHSEC_PREFIX) or not key:
        raise BadSecret(f"Standard Webhooks secrets look like {SECRET_FORMAT}")
    return key


def is_secret(value: str) -> bool:
    try:
        decode_secret(value)
    except BadSecret:
        return False
    return True


def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return base64.b64encode(hmac_sha256(key, f"{msg_id}.{timestamp}.".encode() + body))


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed request. `msg_id` is the event id, identical on every
    retry, so the receiver can deduplicate."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + _signature(key, msg_id, str(timestamp), body).decode(),
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str],
    now: float,
) -> None:
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise SignatureRejected(
            "missing_headers", "missing webhook-id, webhook-timestamp or webhook-signature"
        )
    check_timestamp(timestamp, "webhook-timestamp", now, TOLERANCE_S)
    presented = [
        sig.encode()
        for version, _, sig in (entry.partition(",") for entry in signatures.split())
        if version == "v1"
    ]
    for secret in secrets:
        try:
            key = decode_secret(secret)
        except BadSecret:
            # A malformed stored secret can never verify anything; other secrets still may.
            continue
        if matches_any(_signature(key, msg_id, timestamp, body), presented):
            return
    raise SignatureRejected("mismatch", "no signature matches")
