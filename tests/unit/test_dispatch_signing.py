"""Outgoing Standard Webhooks signatures verify with the reference `standardwebhooks` package."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook

from dispatchers.signing import BadSigningSecret, decode_signing_secret, webhook_headers

pytestmark = pytest.mark.unit

SECRET = "whsec_" + base64.b64encode(b"dispatch-signing-key-0123456789").decode()


def test_signature_verifies_with_standardwebhooks() -> None:
    body = b'{"specversion":"1.0","id":"ev-1"}'
    headers = webhook_headers(decode_signing_secret(SECRET), "ev-1", int(time.time()), body)
    assert headers["webhook-id"] == "ev-1"
    assert Webhook(SECRET).verify(body, headers) == {"specversion": "1.0", "id": "ev-1"}


def test_a_bad_secret_is_refused() -> None:
    with pytest.raises(BadSigningSecret):
        decode_signing_secret("whsec_not base64!")
