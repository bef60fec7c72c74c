"""The console's request plumbing: rendering templates, the signed-in operator, and checked
forms. Every page handler takes `SignedIn` and, for a POST, reads its form with `checked_form`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from psycopg import AsyncConnection

from ingest.api.database import Connection
from ingest.api.dependencies import settings_of
from ingest.console.formatting import FILTERS
from ingest.console.security import CSRF_FIELD, read_form
from ingest.console.session import COOKIE_NAME, Session, SessionCodec
from ingest.registry.api_keys import project_for_key
from ingest.registry.console_sign_outs import signed_out

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# Autoescaping for every template, whatever its name: nothing the console shows is trusted
# markup, and no template uses `|safe`.
templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(FILTERS)


class SignedOut(Exception):
    """No live session: never signed in, expired, forged, or its API key was revoked."""


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token."""


@dataclass(frozen=True, slots=True)
class Operator:
    """The signed-in caller of a console request and the connection its request uses."""

    session: Session
    conn: AsyncConnection[Any]

    @property
    def project_id(self) -> str:
        return self.session.project_id


def codec_of(request: Request) -> SessionCodec:
    codec: SessionCodec = request.app.state.console_sessions
    return codec


async def signed_in(request: Request, conn: Connection) -> Operator:
    """The operator of a live session; `SignedOut` otherwise. The key is re-checked against the
    registry on every request, so a revoked key ends the session at once, and so is sign-out,
    so a copy of a signed-out cookie is no session either."""
    session = codec_of(request).open(request.cookies.get(COOKIE_NAME))
    if session is None or await project_for_key(conn, session.api_key) != session.project_id:
        raise SignedOut
    if await signed_out(conn, session.csrf):
        raise SignedOut
    return Operator(session=session, conn=conn)


SignedIn = Annotated[Operator, Depends(signed_in)]


async def checked_form(request: Request, operator: Operator) -> dict[str, str]:
    """A POSTed form that carries the session's CSRF token; `CsrfRefused` otherwise."""
    form = await read_form(request, settings_of(request).registry.api_max_body_bytes)
    if not operator.session.csrf_matches(form.get(CSRF_FIELD)):
        raise CsrfRefused
    return form


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    session: Session | None = None,
) -> HTMLResponse:
    """A page. With a `session`, the layout shows the navigation and every form its token."""
    body = templates.get_template(template).render(
        {
            "csrf": None if session is None else session.csrf,
            "signed_in": session is not None,
            "path": request.url.path,
            **(context or {}),
        }
    )
    return HTMLResponse(body, status_code=status)
