"""`POST /webhooks/{trigger_id}` as plain ASGI, answered before FastAPI does any work.

The webhook path is the hot one. FastAPI's per-request layers (telemetry checks, error and
body-limit middleware, routing, dependency solving) cost about as much as everything ingest
does itself (benchmarks/ingest_throughput.py), so `IngestApp` answers webhooks first and hands
every other request to FastAPI unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from ingest.webhooks import Answer, ClientDisconnected, WebhookIngress
from runtime.ids import canonical_id

PREFIX = "/webhooks/"
NOT_POST = Answer(405, b'{"error":"webhooks are delivered with POST"}', "bad_request")


class IngestApp(FastAPI):
    """FastAPI, with the webhook route in front; its lifespan puts a `WebhookIngress` on
    `state.webhooks`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        trigger_id = webhook_trigger_id(scope)
        if trigger_id is None:
            await super().__call__(scope, receive, send)
        else:
            await serve_webhook(self.state.webhooks, trigger_id, scope, receive, send)


def webhook_trigger_id(scope: Scope) -> str | None:
    path: str = scope.get("path", "")
    if scope["type"] != "http" or not path.startswith(PREFIX):
        return None
    trigger_id = path[len(PREFIX) :]
    if not trigger_id or "/" in trigger_id:
        return None
    # The view is keyed by canonical ids; anything else is looked up as given and not found.
    return canonical_id(trigger_id) or trigger_id


async def serve_webhook(
    ingress: WebhookIngress, trigger_id: str, scope: Scope, receive: Receive, send: Send
) -> None:
    if scope["method"] != "POST":
        await _send_answer(send, NOT_POST, (b"allow", b"POST"))
        return
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
