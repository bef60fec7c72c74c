"""Bounds on how requests arrive at ingest's HTTP port: in time (408), and with small headers
(431).

uvicorn limits how long a kept-alive connection may sit idle between requests, but not how long
a request may take to arrive: a client that sends a header line every few seconds, or its body
a byte at a time, holds a connection (one of TRIGGERLINE_INGEST_MAX_CONNECTIONS) as long as it
likes. Nor, with httptools, how large the headers may grow: the parser buffers a header of any
size. Here every route of the port (webhooks, control plane, health) gets both bounds, whether
or not the app reads the body.

The read deadline runs from the connection's first moment (or the first byte of a later request
on it) until the headers are complete, then from there until the body is. When it passes, a
request not yet answered gets 408 and the connection is closed; the app sees a disconnect.
A body the app answered without reading (a 404, say) still has to arrive in time, or the
connection is closed: otherwise ignoring the rest of it could go on forever.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any, ClassVar, Literal

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from ingest.refusal_log import RefusalLog
from runtime.settings import Settings

Phase = Literal["header_timeout", "body_timeout"]


def refusal_answer(status: HTTPStatus, message: str) -> bytes:
    body = orjson.dumps({"error": message})
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class RequestBoundsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines and a header size bound;
    `request_bounds` configures one."""

    header_timeout_s: ClassVar[float]
    body_timeout_s: ClassVar[float]
    max_header_bytes: ClassVar[int]
    refusals: ClassVar[RefusalLog]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # The deadline in force (loop time) and its phase; None while none is.
        self._due: float | None = None
        self._phase: Phase = "header_timeout"
        # The timer that checks it. Every request moves the deadline twice; the timer is not
        # moved with it but, when it fires early, set again for the deadline of then, so that
        # a kept-alive connection makes a timer every `header_timeout_s` instead of two or
        # three per request.
        self._timer: asyncio.TimerHandle | None = None
        # Whether any byte of the request the deadline is for has arrived.
        self._request_begun = False
        # Whether the next request's headers are incomplete, and how many bytes of them came.
        self._awaiting_headers = True
        self._header_bytes = 0
        self._completed_in_feed = False

    # uvicorn narrows asyncio's BaseTransport to Transport here; so does this override.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, "header_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._completed_in_feed = False
        super().data_received(data)
        if not self._awaiting_headers or self.transport.is_closing():
            return
        # Headers still incomplete: all of this chunk is header bytes, unless a pipelined
        # request ended in it (then it is not counted, which leaves the bound at most one
        # chunk, 256 KiB, above the setting).
        if not self._completed_in_feed:
            self._header_bytes += len(data)
        if self._header_bytes > self.max_header_bytes:
            message = (
                f"request line and headers over {self.max_header_bytes} bytes"
                " (TRIGGERLINE_INGEST_MAX_HEADER_BYTES)"
            )
            self._refuse("headers_too_large", HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, message)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        self._awaiting_headers = True
        self._header_bytes = 0
        # A new connection's deadline is already running: its first byte does not reset it.
        if self._due is None:
            self._arm(self.header_timeout_s, "header_timeout")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._awaiting_headers = False
        self._arm(self.body_timeout_s, "body_timeout")

    def handle_websocket_upgrade(self) -> None:
        # The connection now belongs to uvicorn's WebSocket protocol (which ingest's app
        # refuses: it has no WebSocket routes); no bound of this one applies any more.
        self._disarm()
        super().handle_websocket_upgrade()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._request_begun = False
        self._completed_in_feed = True
        self._disarm()
        cycle = self.cycle
        # A request answered before its body was in: uvicorn armed its keep-alive timer at the
        # answer, and the body's bytes since have cancelled it. Idle now, the connection gets
        # the deadline of a new one. (A WebSocket upgrade has no cycle of its own.)
        if cycle is not None and cycle.scope is self.scope and cycle.response_complete:
            self._arm(self.header_timeout_s, "header_timeout")

    def _arm(self, timeout_s: float, phase: Phase) -> None:
        due = self.loop.time() + timeout_s
        self._due, self._phase = due, phase
        timer = self._timer
        if timer is not None:
            if timer.when() <= due:
                return  # it fires first, and sets itself again for this deadline
            timer.cancel()
        self._timer = self.loop.call_at(due, self._check_deadline)

    def _disarm(self) -> None:
        self._due = None

    def _check_deadline(self) -> None:
        self._timer = None
        due = self._due
        if due is None:
            return
        if due > self.loop.time():
            self._timer = self.loop.call_at(due, self._check_deadline)
            return
        self._too_slow(self._phase)

    def _too_slow(self, phase: Phase) -> None:
        self._due = None
        if self.transport.is_closing():
            return
        if phase == "header_timeout":
            timeout_s, setting, what = (
                self.header_timeout_s,
                "TRIGGERLINE_INGEST_HEADER_READ_TIMEOUT_S",
                "request line and headers",
            )
        else:
            timeout_s, setting, what = (
                self.body_timeout_s,
                "TRIGGERLINE_INGEST_BODY_READ_TIMEOUT_S",
                "request body",
            )
        message = f"{what} not received within {timeout_s:g} s ({setting}); send it at once"
        self._refuse(phase, HTTPStatus.REQUEST_TIMEOUT, message)

    def _refuse(self, reason: str, status: HTTPStatus, message: str) -> None:
        """Count the refusal, answer it if the request may still be answered, and close."""
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        self.refusals.refused(None, reason, message, client=client)
        self._disarm()
        if self._request_begun and self._unanswered():
            if not self._awaiting_headers:
                # The app is waiting for the body: it now reads a disconnect, and anything it
                # still sends is dropped, as for a client that went away.
                self.cycle.disconnected = True
                self.cycle.message_event.set()
            self.transport.write(refusal_answer(status, message))
        # An idle connection that never started a request is closed without an answer.
        self.transport.close()

    def _unanswered(self) -> bool:
        """Whether the connection may answer the request it is reading."""
        cycle = self.cycle
        if cycle is None:
            return True
        if cycle.scope is self.scope:
            # After its headers, the cycle is the request's own: it must not have begun answering.
            return not cycle.response_started
        # Before them, the request has no cycle yet, and the last one must be done.
        return cycle.response_complete


def request_bounds(settings: Settings, refusals: RefusalLog) -> type[RequestBoundsProtocol]:
    """The protocol class for uvicorn's `http`, with the bounds from settings."""

    class ConfiguredRequestBoundsProtocol(RequestBoundsProtocol):
        header_timeout_s = settings.ingest.header_read_timeout_s
        body_timeout_s = settings.ingest.body_read_timeout_s
        max_header_bytes = settings.ingest.max_header_bytes

    ConfiguredRequestBoundsProtocol.refusals = refusals
    return ConfiguredRequestBoundsProtocol
