"""`/triggers`: create, list, get, update, delete, pause and resume a project's triggers.

Each route adapts HTTP to the control-plane service (`ingest.registry.service`), which checks
and makes every change; its refusals become error answers in the app's one handler.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from ingest.api.auth import ProjectId
from ingest.api.database import Connection
from ingest.api.dependencies import control_plane_of, documented_errors, settings_of
from ingest.api.errors import ApiError
from ingest.api.models import TriggerOut, TriggerPage
from ingest.registry.destinations import shown
from ingest.registry.inputs import TriggerCreate, TriggerUpdate
from ingest.registry.service import webhook_url
from ingest.registry.store import TriggerRow, find_trigger, list_triggers
from schemas.triggers import DEFAULT_DESTINATION, DefinitionSlug, TriggerStatus

router = APIRouter(prefix="/triggers", tags=["triggers"])


@router.post("", status_code=201, responses=documented_errors(409, 413, 422))
async def create(
    body: TriggerCreate, project_id: ProjectId, conn: Connection, request: Request
) -> TriggerOut:
    row = await control_plane_of(request).create_trigger(conn, project_id, body)
    return _out(row, request)


@router.get("", responses=documented_errors())
async def list_(
    *,
    project_id: ProjectId,
    conn: Connection,
    request: Request,
    definition: DefinitionSlug | None = None,
    status: TriggerStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> TriggerPage:
    rows = await list_triggers(
        conn,
        project_id,
        definition=definition,
        status=status,
        limit=limit + 1,
        after=None if cursor is None else decode_cursor(cursor),
    )
    page, more = rows[:limit], len(rows) > limit
    return TriggerPage(
        items=[_out(row, request) for row in page],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


@router.get("/{trigger_id}", responses=documented_errors(404))
async def get(
    trigger_id: str, project_id: ProjectId, conn: Connection, request: Request
) -> TriggerOut:
    return _out(await find_trigger(conn, project_id, trigger_id), request)


@router.patch("/{trigger_id}", responses=documented_errors(404, 409, 413, 422))
async def update(
    trigger_id: str, body: TriggerUpdate, project_id: ProjectId, conn: Connection, request: Request
) -> TriggerOut:
    row = await control_plane_of(request).update_trigger(conn, project_id, trigger_id, body)
    return _out(row, request)


@router.delete("/{trigger_id}", status_code=204, responses=documented_errors(404))
async def delete(
    trigger_id: str, project_id: ProjectId, conn: Connection, request: Request
) -> Response:
    await control_plane_of(request).delete_trigger(conn, project_id, trigger_id)
    return Response(status_code=204)


@router.post("/{trigger_id}/pause", responses=documented_errors(404))
async def pause(
    trigger_id: str, project_id: ProjectId, conn: Connection, request: Request
) -> TriggerOut:
    service = control_plane_of(request)
    return _out(await service.set_trigger_status(conn, project_id, trigger_id, "paused"), request)


@router.post("/{trigger_id}/resume", responses=documented_errors(404))
async def resume(
    trigger_id: str, project_id: ProjectId, conn: Connection, request: Request
) -> TriggerOut:
    service = control_plane_of(request)
    return _out(await service.set_trigger_status(conn, project_id, trigger_id, "active"), request)


def _out(row: TriggerRow, request: Request) -> TriggerOut:
    destinations = [shown(destination) for destination in row.destinations]
    default = next((d for d in destinations if d["name"] == DEFAULT_DESTINATION), None)
    return TriggerOut.model_validate(
        {
            **asdict(row),
            "target": None if default is None else default["target"],
            "destinations": destinations,
            "secret_names": sorted(row.secrets),
            "webhook_url": webhook_url(row, settings_of(request).registry.public_base_url),
        }
    )


def encode_cursor(row: TriggerRow) -> str:
    """The page position after `row`; the console's triggers list pages the same way."""
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, _, trigger_id = base64.urlsafe_b64decode(cursor).decode().partition("|")
        parsed = (datetime.fromisoformat(created_at), str(uuid.UUID(trigger_id)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parsed = None
    if parsed is None or parsed[0].tzinfo is None:
        raise ApiError(400, "malformed request: `cursor` is not one this API issued")
    return parsed
