"""Error pages: under /console every refusal is an HTML page (or JSON for the console's one JSON
endpoint), never the API's JSON body, and never a 500 for bad input.

The API's handlers stay in charge of every other path: each one is wrapped, not replaced.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from psycopg import OperationalError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException

from ingest.console.security import PREFIX, FormError, is_console_path
from ingest.console.session import COOKIE_NAME, COOKIE_PATH
from ingest.console.web import CsrfRefused, SignedOut, codec_of, render
from ingest.registry.errors import RegistryError

Handler = Callable[[Request, Any], Response | Awaitable[Response]]
SIGN_IN = PREFIX + "/sign-in"


def wants_json(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("application/json")


def error_page(request: Request, status: int, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    # The navigation shows for a cookie that opens; it reveals nothing of the project, and the
    # next page re-checks the key.
    session = codec_of(request).open(request.cookies.get(COOKIE_NAME))
    context = {"status": status, "message": message}
    return render(request, "error.html", context, status=status, session=session)


def _message(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, RegistryError):
        return exc.status, str(exc)
    if isinstance(exc, HTTPException):
        return exc.status_code, "page not found" if exc.status_code == 404 else str(exc.detail)
    if isinstance(exc, RequestValidationError):
        return 400, "malformed request: " + "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
    if isinstance(exc, FormError):
        return exc.status, exc.message
    return 503, "registry database unavailable; retry later"


def install_console_errors(app: FastAPI) -> None:
    """Call after the API's handlers are installed: each is wrapped for /console paths."""
    for kind in (
        RegistryError,
        HTTPException,
        RequestValidationError,
        OperationalError,
        PoolTimeout,
    ):
        previous = app.exception_handlers.get(kind)
        app.exception_handlers[kind] = _console_first(previous)

    @app.exception_handler(FormError)
    async def on_bad_form(request: Request, exc: FormError) -> Response:
        return error_page(request, exc.status, exc.message)

    @app.exception_handler(SignedOut)
    async def on_signed_out(request: Request, exc: SignedOut) -> Response:
        response: Response
        if wants_json(request):
            response = JSONResponse({"error": "signed out; sign in again"}, status_code=401)
        else:
            response = RedirectResponse(SIGN_IN, status_code=303)
        response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    @app.exception_handler(CsrfRefused)
    async def on_csrf(request: Request, exc: CsrfRefused) -> Response:
        return error_page(
            request,
            403,
            "this form is stale or did not come from the console (its CSRF token is missing or"
            " wrong); reload the page and try again",
        )


def _console_first(previous: Handler | None) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if is_console_path(request.url.path):
            status, message = _message(exc)
            return error_page(request, status, message)
        if previous is None:
            raise exc
        answer = previous(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    return handle
