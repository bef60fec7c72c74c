"""The control plane's front door, as ASGI middleware: authenticate, then read a bounded body.

A route's body is parsed before its dependencies run, so a key checked by a dependency alone
would let anyone make the server read and parse any body. The gate answers 401 before reading a
byte of the body, and 413 as soon as the bytes received pass the bound, whatever
Content-Length said. The route then gets the buffered body and the caller's project id
(`ingest.api.auth.current_project`).
"""

from __future__ import annotations

from typing import Any

from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.api.auth import PROJECT_STATE, authenticate
from ingest.api.errors import ApiError, error_response, log
from runtime.settings import Settings

# Every control-plane route is under one of these; other paths (health, metrics, docs) are not.
API_PREFIXES = (
    "/definitions",
    "/triggers",
    "/environments",
    "/events",
    "/api-keys",
    "/replays",
)


def is_api_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)


class ControlPlaneGate:
    """Expects the app's state to hold `settings` and `registry_pool`, as ingest's lifespan
    sets them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings: Settings = state.settings
        headers = Headers(scope=scope)
        try:
            project_id = await _authenticated(state.registry_pool, headers.get("authorization"))
        except ApiError as refused:
            await error_response(refused)(scope, receive, send)
            return
        limit = settings.registry.api_max_body_bytes
        too_large = ApiError(
            413,
            f"request body over {limit} bytes (TRIGGERLINE_API_MAX_BODY_BYTES);"
            " send fewer or smaller secrets or a smaller config",
        )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await error_response(too_large)(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await error_response(too_large)(scope, receive, send)
                return
            more = message.get("more_body", False)
        scope.setdefault("state", {})[PROJECT_STATE] = project_id
        await self.app(scope, _replay(bytes(body), receive), send)


async def _authenticated(pool: AsyncConnectionPool[Any], authorization: str | None) -> str:
    try:
        async with pool.connection() as conn:
            return await authenticate(conn, authorization)
    except (OperationalError, PoolTimeout) as exc:
        log.warning("registry database unavailable", extra={"error": str(exc)})
        raise ApiError(503, "registry database unavailable; retry later") from None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then whatever the connection says next (a disconnect)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
