"""The dispatchers' HTTP client against servers that answer byte for byte as a test says."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dispatchers.guard import ForbiddenAddress
from dispatchers.http_client import (
    Answer,
    ConnectionFailed,
    HttpClient,
    InvalidTargetURL,
    ResponseFailed,
    prepared,
)
from tests.integration.support.polling import eventually

NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
LIMIT = 64 * 1024


@dataclass
class Server:
    """Answers each request (or each connection's first bytes) with `answer(n)`, the n-th
    request overall; None answers nothing and keeps the connection open."""

    answer: Callable[[int], bytes | None] = lambda _: NO_CONTENT
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    )
                )
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answer(len(self.requests))
                if answer is None:
                    continue
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def url(self, path: str = "/in") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@asynccontextmanager
async def serving(
    server: Server, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=ssl_context)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()
        for writer in server.writers:
            writer.close()


async def post(
    client: HttpClient, url: str, body: bytes = b"{}", *, timeout_s: float = 5.0
) -> Answer:
    headers = [("webhook-id", "ev-1"), ("content-type", "application/cloudevents+json")]
    return await client.post(prepared(url), headers, body, timeout_s=timeout_s, body_limit=LIMIT)


def open_client(ssl_context: ssl.SSLContext | None = None) -> HttpClient:
    return HttpClient(max_connections=4, guard=False, ssl_context=ssl_context)


async def test_the_request_carries_the_path_host_credentials_headers_and_body() -> None:
    async with serving(Server()) as server:
        client = open_client()
        url = f"http://user:p%40s:s@127.0.0.1:{server.port}/a b/in?x=1&y=2#frag"
        assert await post(client, url, b'{"a":1}') == Answer(204, None)
        await client.close()

    [request] = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    line, *headers = head.decode().split("\r\n")
    assert line == "POST /a%20b/in?x=1&y=2 HTTP/1.1"
    credentials = base64.b64encode(b"user:p@s:s").decode()
    assert headers == [
        f"Host: 127.0.0.1:{server.port}",
        f"Authorization: Basic {credentials}",
        "User-Agent: Triggerline",
        "webhook-id: ev-1",
        "content-type: application/cloudevents+json",
        "Content-Length: 7",
    ]
    assert body == b'{"a":1}'


async def test_a_kept_alive_connection_serves_the_next_request() -> None:
    async with serving(Server()) as server:
        client = open_client()
        for _ in range(3):
            assert (await post(client, server.url())).status == 204
        await client.close()
    assert (len(server.requests), server.connections) == (3, 1)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        # A body far larger than the client reads.
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 * LIMIT) + b"x" * (64 * LIMIT),
    ],
)
async def test_a_connection_is_not_reused_after_an_answer_that_forbids_it(answer: bytes) -> None:
    async with serving(Server(lambda _: answer)) as server:
        client = open_client()
        for _ in range(2):
            assert (await post(client, server.url())).status == 200
        await client.close()
    assert server.connections == 2


async def test_a_chunked_answer_is_read_through_and_its_connection_reused() -> None:
    answer = (
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n5\r\nbusy.\r\n0\r\n\r\n"
    )
    async with serving(Server(lambda _: answer)) as server:
        client = open_client()
        assert await post(client, server.url()) == Answer(503, "7")
        assert await post(client, server.url()) == Answer(503, "7")
        await client.close()
    assert server.connections == 1


async def test_informational_answers_are_skipped() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
    async with serving(Server(lambda _: answer)) as server:
        client = open_client()
        assert await post(client, server.url()) == Answer(202, None)
        await client.close()


async def test_an_answer_in_time_stands_when_its_body_is_not() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    async with serving(Server(lambda _: answer)) as server:
        client = open_client()
        assert await post(client, server.url(), timeout_s=0.2) == Answer(200, None)
        await client.close()


async def test_no_answer_in_time_is_a_timeout() -> None:
    async with serving(Server(lambda _: None)) as server:
        client = open_client()
        with pytest.raises(TimeoutError):
            await post(client, server.url(), timeout_s=0.2)
        await client.close()


@pytest.mark.parametrize(
    "answer", [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r", b"SMTP ready\r\n\r\n"]
)
async def test_a_broken_or_foreign_answer_fails_the_request(answer: bytes) -> None:
    def then_close(_: int) -> bytes:
        server.writers[-1].close()
        return answer

    async with serving(Server(then_close)) as server:
        client = open_client()
        with pytest.raises(ResponseFailed):
            await post(client, server.url())
        await client.close()


async def test_a_connection_the_server_closed_while_idle_is_not_used() -> None:
    async with serving(Server()) as server:
        client = open_client()
        await post(client, server.url())
        assert client.idle_connections == 1
        server.writers[0].close()

        async def closed() -> bool | None:
            return client.idle_connections == 0 or None

        await eventually(closed, timeout_s=5, interval_s=0.01)
        assert (await post(client, server.url())).status == 204
        await client.close()
    assert server.connections == 2


async def test_a_refused_connection_says_why() -> None:
    async with serving(Server()) as server:
        url = server.url()
    client = open_client()
    with pytest.raises(ConnectionFailed) as failed:
        await post(client, url)
    assert isinstance(failed.value.os_error, ConnectionRefusedError)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_the_guard_refuses_private_addresses_before_connecting(host: str) -> None:
    async with serving(Server()) as server:
        client = HttpClient(max_connections=1, guard=True)
        with pytest.raises(ConnectionFailed) as failed:
            await post(client, f"http://{host}:{server.port}/in")
    assert isinstance(failed.value.os_error, ForbiddenAddress)
    assert server.connections == 0


async def test_a_header_value_http_cannot_carry_is_refused_before_sending() -> None:
    async with serving(Server()) as server:
        client = open_client()
        with pytest.raises(ValueError, match="newline"):
            await client.post(
                prepared(server.url()),
                [("triggerline-replay-id", "r\r\nX-Injected: 1")],
                b"{}",
                timeout_s=1,
                body_limit=LIMIT,
            )
    assert server.connections == 0


@pytest.mark.parametrize("url", ["ftp://example.com/", "http:///in", "http://[::1/in"])
def test_urls_that_cannot_be_requested(url: str) -> None:
    with pytest.raises(InvalidTargetURL):
        prepared(url)


def test_credentials_basic_authorization_cannot_carry_are_refused() -> None:
    with pytest.raises(ValueError, match="not allowed in login"):
        prepared("http://a%3Ab:c@example.com/")
    with pytest.raises(UnicodeEncodeError):
        prepared("http://us€r:x@example.com/")


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_verifies_the_servers_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    async with serving(Server(), server_context) as server:
        url = f"https://127.0.0.1:{server.port}/in"
        untrusting = open_client()
        with pytest.raises(ConnectionFailed) as failed:
            await post(untrusting, url)
        assert isinstance(failed.value.os_error, ssl.SSLCertVerificationError)

        trusting = open_client(ssl_context=ssl.create_default_context(cafile=cert))
        assert (await post(trusting, url)).status == 204
        await trusting.close()
    assert len(server.requests) == 1
