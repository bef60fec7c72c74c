"""`/replays`: start (or dry-run), list, show and cancel a project's replays.

Each route adapts HTTP to the replay service (`ingest.replay.service`), which checks the
request and reads or writes the replays table; ingest's replay worker runs what is started.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from ingest.api.auth import ProjectId
from ingest.api.database import Connection
from ingest.api.dependencies import documented_errors, resource_id, settings_of
from ingest.api.models import DryRunOut, ReplayOut, ReplayPage
from ingest.registry.api_keys import KEY_PREFIX
from ingest.replay.requests import ReplayCreate
from ingest.replay.service import ReplayService

router = APIRouter(prefix="/replays", tags=["replays"])
# As many characters of the caller's key as `triggerline api-keys list` shows.
SHOWN_KEY_CHARACTERS = 10


def _service(request: Request) -> ReplayService:
    return ReplayService(settings_of(request))


def _caller(request: Request) -> str:
    """Who started it: the API key, by the prefix its project's key list shows."""
    key = request.headers.get("authorization", "").partition(" ")[2].strip()
    shown = key[:SHOWN_KEY_CHARACTERS] if key.startswith(KEY_PREFIX) else "?"
    return f"api key {shown}"


@router.post(
    "",
    status_code=201,
    responses={
        200: {"model": DryRunOut, "description": "A dry run's report; nothing was sent"},
        **documented_errors(409, 422),
    },
)
async def start(
    body: ReplayCreate,
    project_id: ProjectId,
    conn: Connection,
    request: Request,
    response: Response,
) -> ReplayOut | DryRunOut:
    """Start a replay (201), or with `dry_run`, report what it would do (200)."""
    started = await _service(request).start(conn, project_id, _caller(request), body)
    if isinstance(started, DryRunOut):
        response.status_code = 200
    return started


@router.get("", responses=documented_errors())
async def list_(
    *,
    project_id: ProjectId,
    conn: Connection,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: datetime | None = None,
) -> ReplayPage:
    """The project's replays, newest first."""
    return await _service(request).list(conn, project_id, limit=limit, before=before)


@router.get("/{replay_id}", responses=documented_errors(404))
async def show(
    replay_id: str, project_id: ProjectId, conn: Connection, request: Request
) -> ReplayOut:
    return await _service(request).show(conn, project_id, resource_id(replay_id, "replay"))


@router.post("/{replay_id}/cancel", responses=documented_errors(404, 409))
async def cancel(
    replay_id: str, project_id: ProjectId, conn: Connection, request: Request
) -> ReplayOut:
    """Stop a replay: at once if nobody runs it, else at its runner's next transaction."""
    return await _service(request).cancel(conn, project_id, resource_id(replay_id, "replay"))
