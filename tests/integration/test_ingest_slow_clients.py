"""Slow and greedy clients on a real ingest process, over raw sockets.

A request's headers, then its body, must arrive within their read deadlines (1 s here), or the
answer is 408 and the connection closes; trickling bytes does not extend a deadline. Headers
over their bound get 431; past the connection limit uvicorn answers 503. Every wait is on the
socket, bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest

from runtime.settings import Settings
from tests.integration.support.ingest_process import RunningIngest, running_ingest
from tests.integration.support.polling import eventually
from tests.integration.support.trigger_configs import publish_configs, trigger_config

pytestmark = pytest.mark.integration

READ_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 8
MAX_HEADER_BYTES = 4096
# Far past the read deadlines: a socket that has not answered by then never will.
SOCKET_DEADLINE_S = 10.0
# The event loop's timers may fire up to a clock tick early.
TIMER_SLACK_S = 0.05
REFUSED = "triggerline_ingest_rejected_requests_total"


@dataclass(frozen=True)
class Slow:
    ingest: RunningIngest
    slack: str


@pytest.fixture(scope="module")
async def slow(base_settings: Settings) -> AsyncIterator[Slow]:
    async with running_ingest(
        base_settings,
        ingest__header_read_timeout_s=READ_TIMEOUT_S,
        ingest__body_read_timeout_s=READ_TIMEOUT_S,
        ingest__max_connections=MAX_CONNECTIONS,
        ingest__max_header_bytes=MAX_HEADER_BYTES,
    ) as ingest:
        slack = trigger_config(ingest.settings, "slack", {"SLACK_SIGNING_SECRET": "slow-secret"})
        await publish_configs(ingest.settings, slack)
        await ingest.wait_until_known(slack.trigger_id)
        yield Slow(ingest, slack.trigger_id)


@dataclass(frozen=True)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    # Taken before connecting, so the server's deadline cannot have started earlier.
    opened_at: float

    async def until_closed(self) -> tuple[bytes, float]:
        """Everything the server sends until it closes the connection, and when that was."""
        async with asyncio.timeout(SOCKET_DEADLINE_S):
            received = await self.reader.read()
        return received, time.monotonic() - self.opened_at


@contextlib.asynccontextmanager
async def connection(ingest: RunningIngest) -> AsyncIterator[Connection]:
    opened_at = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.settings.ingest.port)
    try:
        yield Connection(reader, writer, opened_at)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def trickle(writer: asyncio.StreamWriter, piece: bytes, every_s: float = 0.1) -> None:
    """Send `piece` again and again, as a slowloris client does, until the server hangs up."""
    with contextlib.suppress(OSError):
        while not writer.is_closing():
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(every_s)


def within_the_deadline(took_s: float) -> bool:
    """Closed at the deadline, not before; the upper margin is for a busy machine, and far
    below SOCKET_DEADLINE_S, where a deadline that trickling extended would end up."""
    return READ_TIMEOUT_S - TIMER_SLACK_S <= took_s < READ_TIMEOUT_S + 4


def status_and_body(response: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


def request_head(path: str, content_length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: ingest\r\ncontent-type: application/json\r\n"
        f"content-length: {content_length}\r\n\r\n"
    ).encode()


async def test_headers_trickled_a_line_at_a_time_get_408_and_the_connection_closed(
    slow: Slow,
) -> None:
    before = await slow.ingest.counted(REFUSED, reason="header_timeout")
    async with connection(slow.ingest) as client:
        client.writer.write(f"POST /webhooks/{slow.slack} HTTP/1.1\r\n".encode())
        trickler = asyncio.create_task(trickle(client.writer, b"x-padding: slowly\r\n"))
        response, took_s = await client.until_closed()
        trickler.cancel()

    status, body = status_and_body(response)
    assert status == 408
    assert "TRIGGERLINE_INGEST_HEADER_READ_TIMEOUT_S" in body["error"]
    # The deadline counts from the connection's start; the header lines did not extend it.
    assert within_the_deadline(took_s)
    assert await slow.ingest.counted(REFUSED, reason="header_timeout") == before + 1


async def test_an_idle_connection_is_closed_without_an_answer(slow: Slow) -> None:
    async with connection(slow.ingest) as client:
        response, took_s = await client.until_closed()

    assert response == b""
    assert within_the_deadline(took_s)


async def test_a_trickled_body_gets_408_and_the_connection_closed(slow: Slow) -> None:
    before = await slow.ingest.counted(REFUSED, reason="body_timeout")
    async with connection(slow.ingest) as client:
        client.writer.write(request_head(f"/webhooks/{slow.slack}", 1000) + b'{"type": ')
        trickler = asyncio.create_task(trickle(client.writer, b" "))
        response, took_s = await client.until_closed()
        trickler.cancel()

    status, body = status_and_body(response)
    assert status == 408
    assert "TRIGGERLINE_INGEST_BODY_READ_TIMEOUT_S" in body["error"]
    assert within_the_deadline(took_s)
    assert await slow.ingest.counted(REFUSED, reason="body_timeout") == before + 1


async def test_a_body_answered_before_it_arrived_must_still_arrive_in_time(slow: Slow) -> None:
    # An unknown trigger is answered 404 at once, without reading the body; trickling the rest
    # of that body must not keep the connection open.
    async with connection(slow.ingest) as client:
        client.writer.write(request_head(f"/webhooks/{uuid.uuid4()}", 1000))
        trickler = asyncio.create_task(trickle(client.writer, b" "))
        response, took_s = await client.until_closed()
        trickler.cancel()

    assert status_and_body(response) == (404, {"error": "no webhook trigger with this id"})
    assert within_the_deadline(took_s)


async def test_a_connection_idle_after_an_early_answer_is_closed(slow: Slow) -> None:
    async with connection(slow.ingest) as client:
        client.writer.write(request_head(f"/webhooks/{uuid.uuid4()}", 2))
        async with asyncio.timeout(SOCKET_DEADLINE_S):
            status_line = await client.reader.readline()
        client.writer.write(b"{}")
        response, took_s = await client.until_closed()

    assert status_line.startswith(b"HTTP/1.1 404")
    assert b"no webhook trigger with this id" in response
    assert took_s < READ_TIMEOUT_S * 2 + 4


async def answer_on_a_new_connection(
    ingest: RunningIngest,
) -> tuple[int, asyncio.StreamWriter]:
    """GET /healthz on a connection left open (kept alive) afterwards."""
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.settings.ingest.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: ingest\r\n\r\n")
    async with asyncio.timeout(SOCKET_DEADLINE_S):
        status_line = await reader.readline()
    return int(status_line.split(b" ", 2)[1]), writer


async def test_connections_past_the_limit_are_answered_503(slow: Slow) -> None:
    before = await slow.ingest.counted(REFUSED, reason="over_connection_limit")
    statuses: list[int] = []
    writers: list[asyncio.StreamWriter] = []
    try:
        # The test's own HTTP client may hold a kept-alive connection too, so the first 503
        # comes at the limit's connection or before it, never after.
        while 503 not in statuses and len(statuses) <= MAX_CONNECTIONS:
            status, writer = await answer_on_a_new_connection(slow.ingest)
            statuses.append(status)
            writers.append(writer)
    finally:
        for writer in writers:
            writer.close()

    assert statuses[-1] == 503
    assert set(statuses[:-1]) == {200}
    assert len(statuses) <= MAX_CONNECTIONS
    assert await slow.ingest.counted(REFUSED, reason="over_connection_limit") == before + 1

    async def served_again() -> bool | None:
        status, writer = await answer_on_a_new_connection(slow.ingest)
        writer.close()
        return True if status == 200 else None

    # Once the connections close, the server takes new ones again.
    assert await eventually(served_again, timeout_s=SOCKET_DEADLINE_S)


async def test_a_websocket_upgrade_is_refused(slow: Slow) -> None:
    async with connection(slow.ingest) as client:
        client.writer.write(
            b"GET /healthz HTTP/1.1\r\nhost: ingest\r\nupgrade: websocket\r\n"
            b"connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"sec-websocket-version: 13\r\n\r\n"
        )
        response, _ = await client.until_closed()

    assert response.startswith(b"HTTP/1.1 403")


async def test_headers_over_the_bound_get_431_and_the_connection_closed(slow: Slow) -> None:
    before = await slow.ingest.counted(REFUSED, reason="headers_too_large")
    start = f"POST /webhooks/{slow.slack} HTTP/1.1\r\nx-padding: ".encode()
    # One byte over, with no end of headers in sight: the server reads all of it, then refuses.
    async with connection(slow.ingest) as client:
        client.writer.write(start + b"a" * (MAX_HEADER_BYTES + 1 - len(start)))
        response, _ = await client.until_closed()

    status, body = status_and_body(response)
    assert status == 431
    assert body == {
        "error": f"request line and headers over {MAX_HEADER_BYTES} bytes"
        " (TRIGGERLINE_INGEST_MAX_HEADER_BYTES)"
    }
    assert await slow.ingest.counted(REFUSED, reason="headers_too_large") == before + 1


async def test_headers_within_the_bound_are_served(slow: Slow) -> None:
    head = b"GET /healthz HTTP/1.1\r\nhost: ingest\r\nx-padding: "
    padding = b"a" * (MAX_HEADER_BYTES - len(head) - 4)
    async with connection(slow.ingest) as client:
        client.writer.write(head + padding + b"\r\n\r\n")
        async with asyncio.timeout(SOCKET_DEADLINE_S):
            status_line = await client.reader.readline()

    assert status_line.startswith(b"HTTP/1.1 200")
