"""The HTTP/1.1 client of http deliveries: one POST per attempt, over kept-alive connections.

A delivery needs little of HTTP: a POST of bytes it already has, the answer's status and its
Retry-After, and no more than a bounded part of the body. A general client builds request and
response objects, header multidicts, payload wrappers and cookie jars for features a delivery
never uses. This one writes the request in one buffer and parses the answer with httptools' C
parser, for less than half of aiohttp's CPU a request (benchmarks/dispatch_http_client.py).

What it keeps of a general client's behaviour: the request line, `Host` and the credentials of
a URL's userinfo (as Basic authorization) as aiohttp sends them; TLS with certificate and host
name verification; each resolved address tried in turn; the server-side request forgery guard
on every resolved address before a connection is made (dispatchers/guard.py); informational
answers (1xx) skipped; a connection reused only after a complete answer that allows it, and
idle connections closed after `KEEPALIVE_S`. It keeps no cookies: one receiver's cookies are
never sent with another delivery. Redirects are not followed: a 3xx is the answer.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, cast

import httptools
from yarl import URL

from dispatchers.guard import ForbiddenAddress, is_forbidden, literal_address

# Idle connections older than this are closed rather than reused; servers commonly drop theirs
# after 5 to 60 seconds.
KEEPALIVE_S = 15.0
USER_AGENT = "Triggerline"
# Distinct target URLs whose request line and headers are kept ready.
PREPARED_URLS = 4096


class ConnectionFailed(Exception):
    """No connection could be made; `os_error` says why (a `ForbiddenAddress` when the guard
    refused every address the name resolves to)."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(str(os_error))
        self.os_error = os_error


class InvalidTargetURL(ValueError):
    """The URL cannot be requested at all."""


class ResponseFailed(Exception):
    """The connection broke or the answer was not HTTP."""


class Answer(NamedTuple):
    status: int
    retry_after: str | None


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class PreparedTarget:
    origin: Origin
    # The request line and the headers that depend only on the URL, encoded.
    head: bytes


@lru_cache(maxsize=PREPARED_URLS)
def prepared(target_url: str) -> PreparedTarget:
    """The URL's origin and request head. InvalidTargetURL if it is no http(s) URL, ValueError
    if it carries what a request cannot (credentials not in Latin-1, say)."""
    try:
        url = URL(target_url)
        host = url.raw_host
        port = url.port
    except ValueError as exc:
        raise InvalidTargetURL(str(exc)) from None
    if url.scheme not in ("http", "https") or not host or port is None:
        raise InvalidTargetURL("http target URL must be http(s)://host/...")
    lines = [f"POST {url.raw_path_qs} HTTP/1.1", f"Host: {url.host_port_subcomponent}"]
    if url.raw_user is not None or url.raw_password is not None:
        user, password = url.user or "", url.password or ""
        if ":" in user:
            raise ValueError('A ":" is not allowed in login (RFC 1945#section-11.1)')
        credentials = base64.b64encode(f"{user}:{password}".encode("latin1")).decode()
        lines.append(f"Authorization: Basic {credentials}")
    lines.append(f"User-Agent: {USER_AGENT}")
    head = "\r\n".join(lines) + "\r\n"
    _check_header_text(head[:-2].replace("\r\n", ""))
    # A name the resolver is given with several trailing dots is given with one.
    if host.endswith(".."):
        host = host.rstrip(".") + "."
    return PreparedTarget(Origin(url.scheme, host, port), head.encode())


def _check_header_text(text: str) -> None:
    if "\r" in text or "\n" in text or "\x00" in text:
        raise ValueError("newline or NUL character in an HTTP header")


class _Connection(asyncio.Protocol):
    """One connection: at most one request on it at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        # The answer so far: set once its headers are in.
        self.answer: Answer | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._status = 0
        self._retry_after: str | None = None
        self._informational = False
        self._complete = False
        self._keep_alive = False
        self._body_bytes = 0
        self._body_limit = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_connection makes stream transports only.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Nothing was asked: a server that talks out of turn is not talked to again.
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ResponseFailed(f"invalid HTTP answer: {exc}"))
            self.close()
            return
        # Checked once the whole buffer is parsed: an answer and its body usually come in one
        # piece, and then the connection is known to be reusable.
        if self.answer is not None and (self._complete or self._body_bytes > self._body_limit):
            self._settle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None:
            # Its body ended with the connection (or was cut short): the status stands.
            self._settle()
        else:
            self._fail(ResponseFailed("the server closed the connection before answering"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value.decode("latin1")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        # Informational answers precede the real one (101 switches protocols: it is the answer).
        self._informational = 100 <= status < 200 and status != 101
        if self._informational:
            self._retry_after = None
        else:
            self.answer = Answer(status, self._retry_after)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()

    # Used by the client

    async def request(self, data: bytes, body_limit: int) -> Answer:
        """Sends `data` and returns the answer once its body is in, or once more than
        `body_limit` bytes of it are (the rest is not read)."""
        if self.transport is None:
            raise RuntimeError("request on a connection that was never made")
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.answer, self._retry_after = None, None
        self._complete = self._keep_alive = False
        self._body_bytes, self._body_limit = 0, body_limit
        self.transport.write(data)
        try:
            return await waiter
        finally:
            self._waiter = None

    @property
    def reusable(self) -> bool:
        """After an answer: whether the next request may use this connection."""
        return not self.closed and self._complete and self._keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _settle(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done() and self.answer is not None:
            waiter.set_result(self.answer)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class HttpClient:
    def __init__(
        self,
        *,
        max_connections: int,
        guard: bool,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        # Connections open at once (in use and idle) are bounded by this many requests in
        # progress plus the idle ones kept, at most as many again.
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_connections
        self._guard = guard
        self._ssl = ssl_context
        self._keepalive_s = keepalive_s
        # Idle connections by origin, most recently used last.
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0

    async def post(
        self,
        target: PreparedTarget,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        timeout_s: float,
        body_limit: int,
    ) -> Answer:
        """POSTs `body` with `headers` (besides the target's own, and the length). Raises
        ValueError before sending for a header value HTTP cannot carry, TimeoutError after
        `timeout_s`, ConnectionFailed or ResponseFailed."""
        parts = [target.head]
        for name, value in headers:
            _check_header_text(value)
            parts.append(f"{name}: {value}\r\n".encode())
        parts.append(f"Content-Length: {len(body)}\r\n\r\n".encode())
        parts.append(body)
        data = b"".join(parts)
        async with self._slots:
            connection: _Connection | None = None
            try:
                async with asyncio.timeout(timeout_s):
                    connection = self._reused(target.origin)
                    if connection is None:
                        connection = await self._connect(target.origin)
                    answer = await connection.request(data, body_limit)
            except TimeoutError:
                if connection is None or connection.answer is None:
                    raise
                # Answered in time, its body not: the answer stands, the connection goes.
                connection.close()
                return connection.answer
            except BaseException:
                if connection is not None:
                    connection.close()
                raise
            if connection.reusable:
                self._keep(target.origin, connection)
            else:
                connection.close()
            return answer

    @property
    def idle_connections(self) -> int:
        """Idle connections still open, ready for a next request."""
        return sum(not c.closed for connections in self._idle.values() for c in connections)

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        self._idle_count = 0

    def _reused(self, origin: Origin) -> _Connection | None:
        connections = self._idle.get(origin)
        stale_before = time.monotonic() - self._keepalive_s
        while connections:
            connection = connections.pop()
            self._idle_count -= 1
            if not connection.closed and connection.idle_since > stale_before:
                return connection
            connection.close()
        return None

    def _keep(self, origin: Origin, connection: _Connection) -> None:
        if self._idle_count >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(origin, []).append(connection)
        self._idle_count += 1

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        addresses = await self._addresses(origin)
        tls = origin.scheme == "https"
        context = (self._ssl or _default_context()) if tls else None
        last_error: OSError | None = None
        for family, address in addresses:
            try:
                _, connection = await loop.create_connection(
                    _Connection,
                    host=address,
                    port=origin.port,
                    family=family,
                    ssl=context,
                    # Certificates name the host without the trailing dot of a full name.
                    server_hostname=origin.host.rstrip(".") if tls else None,
                )
            except OSError as exc:  # ssl.SSLError included
                last_error = exc
                continue
            return connection
        raise ConnectionFailed(last_error or OSError(f"{origin.host} has no address"))

    async def _addresses(self, origin: Origin) -> list[tuple[int, str]]:
        """(family, address) to try in turn; a literal address is used as it is."""
        literal = literal_address(origin.host)
        if literal is not None:
            if self._guard and is_forbidden(literal):
                raise ConnectionFailed(ForbiddenAddress(f"target address {literal} is not public"))
            family = socket.AF_INET6 if ":" in literal else socket.AF_INET
            return [(family, literal)]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                origin.host,
                origin.port,
                type=socket.SOCK_STREAM,
                flags=socket.AI_ADDRCONFIG,
            )
        except OSError as exc:
            raise ConnectionFailed(exc) from exc
        found = [(int(family), str(sockaddr[0])) for family, _, _, _, sockaddr in infos]
        allowed = [(f, a) for f, a in found if not (self._guard and is_forbidden(a))]
        if not allowed:
            raise ConnectionFailed(
                ForbiddenAddress(f"{origin.host} resolves only to non-public addresses")
            )
        return allowed


@lru_cache(maxsize=1)
def _default_context() -> ssl.SSLContext:
    # Loads the system's certificates once; verification of chain and host name is on.
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context
