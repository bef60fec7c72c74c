"""Standard Webhooks signatures Triggerline makes verify with the reference `standardwebhooks`
package, and secrets that could sign nothing are refused."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook

from runtime.standard_webhooks import BadSecret, decode_secret, is_secret, sign

pytestmark = pytest.mark.unit

SECRET = "whsec_" + base64.b64encode(b"dispatch-signing-key-0123456789").decode()


def test_signature_verifies_with_standardwebhooks() -> None:
    body = b'{"specversion":"1.0","id":"ev-1"}'
    headers = sign(decode_secret(SECRET), "ev-1", int(time.time()), body)
    assert headers["webhook-id"] == "ev-1"
    assert Webhook(SECRET).verify(body, headers) == {"specversion": "1.0", "id": "ev-1"}


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_", "bm90IHdoc2Vj", ""])
def test_a_bad_secret_is_refused(secret: str) -> None:
    with pytest.raises(BadSecret):
        decode_secret(secret)
    assert not is_secret(secret)
