"""`/triggers/{id}/destinations`: a trigger's destinations, one at a time.

Each route adapts HTTP to the control-plane service (`ingest.registry.service`); a change bumps
the trigger's revision and is published like any change to the trigger. An unknown trigger or
destination name is a 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ingest.api.auth import ProjectId
from ingest.api.database import Connection
from ingest.api.dependencies import control_plane_of, documented_errors
from ingest.api.models import DestinationOut
from ingest.registry.destinations import shown
from ingest.registry.errors import NotFound
from ingest.registry.inputs import DestinationIn, DestinationReplace, DestinationUpdate
from ingest.registry.store import find_trigger
from schemas.triggers import Destination

router = APIRouter(prefix="/triggers/{trigger_id}/destinations", tags=["destinations"])


@router.get("", responses=documented_errors(404))
async def list_(trigger_id: str, project_id: ProjectId, conn: Connection) -> list[DestinationOut]:
    row = await find_trigger(conn, project_id, trigger_id)
    return [_out(destination) for destination in row.destinations]


@router.post("", status_code=201, responses=documented_errors(404, 409, 413, 422))
async def add(
    trigger_id: str, body: DestinationIn, project_id: ProjectId, conn: Connection, request: Request
) -> DestinationOut:
    service = control_plane_of(request)
    _, added = await service.add_destination(conn, project_id, trigger_id, body)
    return _out(added)


@router.get("/{name}", responses=documented_errors(404))
async def get(
    trigger_id: str, name: str, project_id: ProjectId, conn: Connection
) -> DestinationOut:
    destination = (await find_trigger(conn, project_id, trigger_id)).destination(name)
    if destination is None:
        raise NotFound("destination")
    return _out(destination)


@router.put("/{name}", responses=documented_errors(404, 413, 422))
async def replace(
    *,
    trigger_id: str,
    name: str,
    body: DestinationReplace,
    project_id: ProjectId,
    conn: Connection,
    request: Request,
) -> DestinationOut:
    service = control_plane_of(request)
    _, replaced = await service.replace_destination(conn, project_id, trigger_id, name, body)
    return _out(replaced)


@router.patch("/{name}", responses=documented_errors(404, 409, 413, 422))
async def update(
    *,
    trigger_id: str,
    name: str,
    body: DestinationUpdate,
    project_id: ProjectId,
    conn: Connection,
    request: Request,
) -> DestinationOut:
    service = control_plane_of(request)
    _, updated = await service.update_destination(conn, project_id, trigger_id, name, body)
    return _out(updated)


@router.delete("/{name}", status_code=204, responses=documented_errors(404, 409))
async def delete(
    trigger_id: str, name: str, project_id: ProjectId, conn: Connection, request: Request
) -> Response:
    await control_plane_of(request).remove_destination(conn, project_id, trigger_id, name)
    return Response(status_code=204)


def _out(destination: Destination) -> DestinationOut:
    return DestinationOut.model_validate(shown(destination))
