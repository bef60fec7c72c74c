"""The web console, served by ingest under /console: server-rendered pages over the same
registry and service functions the control-plane API uses (docs/console.md).

Each page module has a `router`; `PAGES` lists them, and `mount_console` adds them, the static
assets, the security headers and the HTML error pages to the ingest app.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ingest.console import (
    cel_check,
    dead_letters,
    destination_forms,
    events,
    journey,
    ops,
    replays,
    sign_in,
    trigger_page,
    triggers,
)
from ingest.console.errors import install_console_errors
from ingest.console.security import STATIC_PREFIX, ConsoleHeaders
from ingest.console.web import STATIC

PAGES = (
    sign_in,
    triggers,
    trigger_page,
    destination_forms,
    cel_check,
    events,
    journey,
    dead_letters,
    replays,
    ops,
)


def mount_console(app: FastAPI) -> None:
    """Expects `app.state.console_sessions` (a `SessionCodec`) besides what the control plane
    expects; call after `mount_control_plane`, whose error handlers this wraps."""
    app.add_middleware(ConsoleHeaders)
    install_console_errors(app)
    app.mount(STATIC_PREFIX.rstrip("/"), StaticFiles(directory=STATIC), name="console-static")
    for page in PAGES:
        app.include_router(page.router)
