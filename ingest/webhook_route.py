"""`POST /webhooks/{trigger_id}` as plain ASGI, in front of the FastAPI app.

The webhook path is the hot one. Answering it here, before FastAPI's routing, dependency
solving and middleware, roughly halves the server's work per request (benchmarks/
ingest_throughput.py); every other path goes on to FastAPI unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.types import ASGIApp, Receive, Scope, Send

from ingest.webhooks import Answer, WebhookIngress

PREFIX = "/webhooks/"
NOT_POST = Answer(405, b'{"error":"webhooks are delivered with POST"}', "bad_request")


class ClientDisconnected(Exception):
    """The sender went away before its body arrived; there is no one left to answer."""


class WebhookRoute:
    """ASGI middleware; finds the ingress core on the app's state (set in its lifespan)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        trigger_id = path[len(PREFIX) :]
        if (
            scope["type"] != "http"
            or not path.startswith(PREFIX)
            or not trigger_id
            or "/" in trigger_id
        ):
            await self._app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _send_answer(send, NOT_POST, (b"allow", b"POST"))
            return
        ingress: WebhookIngress = scope["app"].state.webhooks
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            # The first of repeated headers counts, as in Starlette's `Headers.get`.
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        try:
            answer = await ingress.receive(trigger_id, headers, _body(receive))
        except ClientDisconnected:
            return
        await _send_answer(send, answer)


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _send_answer(send: Send, answer: Answer, *extra: tuple[bytes, bytes]) -> None:
    headers = [
        (b"content-type", answer.media_type.encode()),
        (b"content-length", str(len(answer.body)).encode()),
        *((name.encode(), value.encode()) for name, value in answer.headers),
        *extra,
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
