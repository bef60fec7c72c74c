"""Signing in with a project API key, and out again.

Signing in is guarded against login CSRF (a cross-site page signing the browser into the
attacker's project) by a double-submit token: the sign-in page sets it in a SameSite=Strict
cookie and in the form, and the POST must carry both, equal. A cross-site POST carries no cookie.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ingest.api.database import Connection
from ingest.api.dependencies import settings_of
from ingest.console.security import CSRF_FIELD, PREFIX, read_form
from ingest.console.session import COOKIE_NAME, COOKIE_PATH, new_session
from ingest.console.web import SignedIn, checked_form, codec_of, render
from ingest.registry.api_keys import project_for_key
from ingest.registry.console_sign_outs import record_sign_out

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PRE_COOKIE = "tl_console_pre"
# Longest field we look at: API keys are ~46 characters.
MAX_KEY_CHARS = 200


def _sign_in_page(request: Request, message: str | None, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "sign_in.html", {"pre": token, "message": message}, status=status)
    response.set_cookie(
        PRE_COOKIE,
        token,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request, None, 200)


@router.post("/sign-in")
async def sign_in(request: Request, conn: Connection) -> Response:
    form = await read_form(request, settings_of(request).registry.api_max_body_bytes)
    cookie = request.cookies.get(PRE_COOKIE, "")
    submitted = form.get(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), submitted.encode()):
        return _sign_in_page(
            request, "the sign-in form expired or came from elsewhere; sign in again", 403
        )
    key = form.get("api_key", "").strip()
    if not key:
        return _sign_in_page(request, "api_key: enter a project API key", 422)
    project_id = None if len(key) > MAX_KEY_CHARS else await project_for_key(conn, key)
    if project_id is None:
        return _sign_in_page(
            request,
            "api_key: not a live API key (unknown or revoked); create one with"
            " `triggerline projects create-key`",
            401,
        )
    codec = codec_of(request)
    response = RedirectResponse(PREFIX + "/triggers", status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        codec.seal(new_session(key, project_id)),
        max_age=int(codec.ttl_s),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(PRE_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, operator: SignedIn) -> Response:
    await checked_form(request, operator)
    await record_sign_out(operator.conn, operator.session.csrf, codec_of(request).ttl_s)
    response = RedirectResponse(PREFIX + "/sign-in", status_code=303)
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
