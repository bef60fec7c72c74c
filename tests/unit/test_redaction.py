"""Target URLs shown to humans keep what tells them apart and lose every credential."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from schemas.redaction import UNPARSEABLE, redact_url, redact_urls_in
from tests.unit.support.dispatch import attempt_http

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # Userinfo: user and password are both masked (a user name is often a token itself).
        ("https://alice:s3cret@hooks.example/in", "https://redacted:redacted@hooks.example/in"),
        ("https://ghp_tok3n@git.example/x", "https://redacted@git.example/x"),
        # An @ inside the password: the host is what follows the last @.
        ("https://u:p@ss@h.example/", "https://redacted:redacted@h.example/"),
        # Query values go, names stay; a bare item may be a token and goes too.
        (
            "https://h.example/hook?token=abc&sig=def&key=ghi",
            "https://h.example/hook?token=redacted&sig=redacted&key=redacted",
        ),
        ("https://h.example/hook?abc123", "https://h.example/hook?redacted"),
        ("https://h.example/hook?a=1=2&&b=", "https://h.example/hook?a=redacted&&b=redacted"),
        # Fragments can carry tokens too.
        ("https://h.example/cb#access_token=xyz", "https://h.example/cb#redacted"),
        # IPv6 hosts and ports are kept as written.
        (
            "http://user:pw@[2001:db8::1]:8443/p?k=v#f",
            "http://redacted:redacted@[2001:db8::1]:8443/p?k=redacted#redacted",
        ),
        # Capability URLs carry their token in the path; words and short ids stay readable.
        (
            "https://hooks.slack.com/services/T0001/B0002/c2KXqNw7JrT5LQ8mB1zVyF3d",
            "https://hooks.slack.com/services/T0001/B0002/redacted",
        ),
        (
            "https://discord.com/api/webhooks/123456789012345678/kX9f3Qz_2LmN8vR4tY7wB1-cD6eH0jK5",
            "https://discord.com/api/webhooks/123456789012345678/redacted",
        ),
        (
            "https://h.example/orders/webhook-events-v2",
            "https://h.example/orders/webhook-events-v2",
        ),
        # Nothing to hide: unchanged.
        ("https://h.example:8080/a/b", "https://h.example:8080/a/b"),
        ("https://h.example/a?", "https://h.example/a"),
        ("orders.created", "orders.created"),
        ("", ""),
        # Unparseable: nothing of it is known to be safe.
        ("http://[::1/p?token=abc", UNPARSEABLE),
        ("http://u:p@h.example:99999/?token=abc", UNPARSEABLE),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_url(shown) == shown, "redacting twice changes nothing"


def test_urls_inside_text_are_redacted() -> None:
    text = "ClientResponseError: 400, message='x', url='http://127.0.0.1:1/p?token=abc#f'"
    assert redact_urls_in(text) == (
        "ClientResponseError: 400, message='x', url='http://127.0.0.1:1/p?token=redacted#redacted'"
    )
    assert redact_urls_in("timed out after 5 s") == "timed out after 5 s"


@asynccontextmanager
async def unparseable_http_target() -> AsyncIterator[int]:
    """A target answering a status line no HTTP client can parse."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 abc\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_an_attempt_error_carries_no_credential_of_the_url() -> None:
    async with unparseable_http_target() as port:
        result = await attempt_http(
            f"http://127.0.0.1:{port}/hook?token=tok-SECRET#frag-SECRET", allow_private=True
        )
    assert result.outcome == "retryable"
    assert result.error is not None
    assert result.error.startswith("ResponseFailed: invalid HTTP answer")
    assert "SECRET" not in result.error
