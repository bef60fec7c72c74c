"""`/environments`: named sets of write-only secrets that a project's triggers may refer to.

Each route adapts HTTP to the control-plane service (`ingest.registry.service`) or a registry
read; refusals become error answers in the app's one handler.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, Response

from ingest.api.auth import ProjectId
from ingest.api.database import Connection
from ingest.api.dependencies import control_plane_of, documented_errors, resource_id
from ingest.api.models import EnvironmentOut
from ingest.registry.environments import (
    EnvironmentRow,
    delete_environment,
    find_environment,
    list_environments,
)
from ingest.registry.inputs import EnvironmentCreate, EnvironmentUpdate

router = APIRouter(prefix="/environments", tags=["environments"])


@router.post("", status_code=201, responses=documented_errors(409, 422))
async def create(
    body: EnvironmentCreate, project_id: ProjectId, conn: Connection, request: Request
) -> EnvironmentOut:
    return _out(await control_plane_of(request).create_environment(conn, project_id, body))


@router.get("", responses=documented_errors())
async def list_(project_id: ProjectId, conn: Connection) -> list[EnvironmentOut]:
    return [_out(row) for row in await list_environments(conn, project_id)]


@router.get("/{environment_id}", responses=documented_errors(404))
async def get(environment_id: str, project_id: ProjectId, conn: Connection) -> EnvironmentOut:
    return _out(
        await find_environment(conn, project_id, resource_id(environment_id, "environment"))
    )


@router.patch("/{environment_id}", responses=documented_errors(404, 409, 413, 422))
async def update(
    environment_id: str,
    body: EnvironmentUpdate,
    project_id: ProjectId,
    conn: Connection,
    request: Request,
) -> EnvironmentOut:
    environment_id = resource_id(environment_id, "environment")
    service = control_plane_of(request)
    return _out(await service.update_environment(conn, project_id, environment_id, body))


@router.delete("/{environment_id}", status_code=204, responses=documented_errors(404, 409))
async def delete(environment_id: str, project_id: ProjectId, conn: Connection) -> Response:
    await delete_environment(conn, project_id, resource_id(environment_id, "environment"))
    return Response(status_code=204)


def _out(row: EnvironmentRow) -> EnvironmentOut:
    return EnvironmentOut.model_validate({**asdict(row), "secret_names": sorted(row.secrets)})
