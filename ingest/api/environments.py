"""`/environments`: named sets of write-only secrets that a project's triggers may refer to."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request, Response

from ingest.api.auth import ProjectId
from ingest.api.database import Connection
from ingest.api.dependencies import documented_errors, keyring_of, resource_id, settings_of
from ingest.api.errors import ApiError, invalid, not_found
from ingest.api.models import EnvironmentCreate, EnvironmentOut, EnvironmentUpdate
from ingest.registry.environments import (
    EnvironmentInUse,
    EnvironmentRow,
    create_environment,
    delete_environment,
    find_environment,
    list_environments,
    save_environment,
)
from ingest.registry.store import NameConflict, NotFound
from ingest.registry.validation import FieldError, secret_count_errors, secret_errors

router = APIRouter(prefix="/environments", tags=["environments"])


@router.post("", status_code=201, responses=documented_errors(409, 422))
async def create(
    body: EnvironmentCreate, project_id: ProjectId, conn: Connection, request: Request
) -> EnvironmentOut:
    errors = secret_errors("secrets", body.secrets)
    errors += secret_count_errors(
        "secrets", len(body.secrets), settings_of(request).registry.max_secrets
    )
    if errors:
        raise invalid(errors)
    keyring = keyring_of(request)
    encrypted = {name: keyring.encrypt(value) for name, value in body.secrets.items()}
    try:
        row = await create_environment(conn, project_id, body.name, encrypted)
    except NameConflict as conflict:
        raise ApiError(409, str(conflict)) from None
    return _out(row)


@router.get("", responses=documented_errors())
async def list_(project_id: ProjectId, conn: Connection) -> list[EnvironmentOut]:
    return [_out(row) for row in await list_environments(conn, project_id)]


@router.get("/{environment_id}", responses=documented_errors(404))
async def get(environment_id: str, project_id: ProjectId, conn: Connection) -> EnvironmentOut:
    try:
        return _out(
            await find_environment(conn, project_id, resource_id(environment_id, "environment"))
        )
    except NotFound:
        raise not_found("environment") from None


@router.patch("/{environment_id}", responses=documented_errors(404, 409, 413, 422))
async def update(
    environment_id: str,
    body: EnvironmentUpdate,
    project_id: ProjectId,
    conn: Connection,
    request: Request,
) -> EnvironmentOut:
    keyring = keyring_of(request)
    settings = settings_of(request)
    environment_id = resource_id(environment_id, "environment")
    given = body.model_fields_set
    errors = [
        FieldError(field, "cannot be null")
        for field in ("name", "secrets")
        if field in given and getattr(body, field) is None
    ]
    errors += secret_errors("secrets", body.secrets or {})
    if errors:
        raise invalid(errors)
    async with conn.transaction():
        try:
            row = await find_environment(conn, project_id, environment_id, lock=True)
        except NotFound:
            raise not_found("environment") from None
        secrets = dict(row.secrets)
        for name, value in (body.secrets or {}).items():
            if value is None:
                secrets.pop(name, None)
            else:
                secrets[name] = keyring.encrypt(value)
        new = replace(row, name=body.name or row.name, secrets=secrets)
        errors = secret_count_errors("secrets", len(secrets), settings.registry.max_secrets)
        if errors:
            raise invalid(errors)
        if new != row:
            try:
                # RecordTooLarge (413) if a trigger using the environment would outgrow its
                # config record: the change is refused for all of them.
                row = await save_environment(
                    conn, new, record_bound=settings.registry.config_record_max_bytes
                )
            except NameConflict as conflict:
                raise ApiError(409, str(conflict)) from None
    return _out(row)


@router.delete("/{environment_id}", status_code=204, responses=documented_errors(404, 409))
async def delete(environment_id: str, project_id: ProjectId, conn: Connection) -> Response:
    try:
        await delete_environment(conn, project_id, resource_id(environment_id, "environment"))
    except NotFound:
        raise not_found("environment") from None
    except EnvironmentInUse as in_use:
        raise ApiError(409, str(in_use)) from None
    return Response(status_code=204)


def _out(row: EnvironmentRow) -> EnvironmentOut:
    return EnvironmentOut(
        id=row.id,
        name=row.name,
        secret_names=sorted(row.secrets),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
