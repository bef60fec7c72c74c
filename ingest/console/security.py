"""What every console response and form submission goes through: security headers, bounded
form bodies, and the CSRF check.

The policy allows only the console's own script and stylesheet: no inline script or style and
no `on*` attributes anywhere, so markup that slipped through escaping still could not run.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/console"
STATIC_PREFIX = PREFIX + "/static/"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    # Belt and braces with frame-ancestors, for browsers that only know this one.
    "x-frame-options": "DENY",
}
# Static assets change only with a release; pages carry per-user data and are never cached.
STATIC_CACHE = "public, max-age=3600"
PAGE_CACHE = "no-store"
FORM_TYPE = "application/x-www-form-urlencoded"
# The field every state-changing form carries.
CSRF_FIELD = "csrf"


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class ConsoleHeaders:
    """ASGI middleware: the security headers on every /console response, whatever produced it
    (a page, a static file, an error handler)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_console_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers["cache-control"] = STATIC_CACHE if static else PAGE_CACHE
            await send(message)

        await self.app(scope, receive, send_with_headers)


class FormError(Exception):
    """A form body the console will not read; `status` says why (413, 415, 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_form(request: Request, limit: int) -> dict[str, str]:
    """An urlencoded form body of at most `limit` bytes, read no further than that; a repeated
    field keeps its last value."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # A POST with no body at all (no fields) may come without a type; it is an empty form.
    if content_type not in (FORM_TYPE, ""):
        raise FormError(415, f"forms are sent as {FORM_TYPE}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormError(413, f"form over {limit} bytes (TRIGGERLINE_API_MAX_BODY_BYTES)")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise FormError(400, "the form is not UTF-8") from None
    return dict(pairs)


async def read_json(request: Request, limit: int) -> bytes:
    """A JSON body of at most `limit` bytes (the CEL check's)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise FormError(415, "send application/json")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormError(413, f"body over {limit} bytes (TRIGGERLINE_API_MAX_BODY_BYTES)")
    return bytes(body)
