"""`/triggers`: create, list, get, update, delete, pause and resume a project's triggers."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from psycopg import AsyncConnection

from ingest.api.auth import ProjectId
from ingest.api.database import Connection
from ingest.api.dependencies import (
    documented_errors,
    kafka_target_policy,
    keyring_of,
    resource_id,
    settings_of,
)
from ingest.api.errors import ApiError, invalid, not_found
from ingest.api.models import TargetIn, TargetOut, TriggerCreate, TriggerOut, TriggerPage
from ingest.api.models import TriggerUpdate as TriggerPatch
from ingest.registry.config_records import UnknownEnvironment, lock_environment
from ingest.registry.store import (
    NameConflict,
    NewTrigger,
    NotFound,
    TriggerRow,
    delete_trigger,
    find_trigger,
    insert_trigger,
    list_triggers,
    save_trigger,
)
from ingest.registry.validation import (
    FieldError,
    Invalid,
    is_whsec,
    missing_secret_errors,
    secret_count_errors,
    secret_errors,
    target_errors,
    validated_config,
)
from runtime.secrets import Keyring
from schemas.definitions import DEFINITIONS
from schemas.triggers import DefinitionSlug, Target, TriggerStatus

router = APIRouter(prefix="/triggers", tags=["triggers"])


@router.post("", status_code=201, responses=documented_errors(409, 413, 422))
async def create(
    body: TriggerCreate, project_id: ProjectId, conn: Connection, request: Request
) -> TriggerOut:
    keyring = keyring_of(request)
    settings = settings_of(request)
    definition = DEFINITIONS[body.definition]
    errors: list[FieldError] = []
    config = _collect(errors, lambda: validated_config(definition, body.config))
    target = _target(body.target)
    errors += target_errors(
        target, body.target.signing_secret is not None, kafka_target_policy(request)
    )
    errors += _signing_secret_errors(body.target)
    errors += secret_errors("secrets", body.secrets)
    errors += secret_count_errors("secrets", len(body.secrets), settings.registry.max_secrets)
    environment_id = None if body.environment_id is None else str(body.environment_id)
    async with conn.transaction():
        available = set(body.secrets)
        available |= await _environment_secret_names(conn, project_id, environment_id, errors)
        errors += missing_secret_errors(definition, available)
        if errors:
            raise invalid(errors)
        try:
            row = await insert_trigger(
                conn,
                NewTrigger(
                    project_id=project_id,
                    definition=body.definition,
                    name=body.name,
                    target=target,
                    config=config or {},
                    secrets={name: keyring.encrypt(v) for name, v in body.secrets.items()},
                    status=body.status,
                    environment_id=environment_id,
                    target_secret=_encrypted(keyring, body.target.signing_secret),
                ),
                record_bound=settings.registry.config_record_max_bytes,
            )
        except NameConflict as conflict:
            raise ApiError(409, str(conflict)) from None
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
        after=None if cursor is None else _decode_cursor(cursor),
    )
    page, more = rows[:limit], len(rows) > limit
    return TriggerPage(
        items=[_out(row, request) for row in page],
        next_cursor=_encode_cursor(page[-1]) if more else None,
    )


@router.get("/{trigger_id}", responses=documented_errors(404))
async def get(
    trigger_id: str, project_id: ProjectId, conn: Connection, request: Request
) -> TriggerOut:
    return _out(await _find(conn, project_id, trigger_id), request)


@router.patch("/{trigger_id}", responses=documented_errors(404, 409, 413, 422))
async def update(
    trigger_id: str, body: TriggerPatch, project_id: ProjectId, conn: Connection, request: Request
) -> TriggerOut:
    keyring = keyring_of(request)
    settings = settings_of(request)
    given = body.model_fields_set
    async with conn.transaction():
        row = await _find(conn, project_id, trigger_id, lock=True)
        definition = DEFINITIONS[row.definition]
        errors = [
            FieldError(field, "cannot be null")
            for field in ("definition", "name", "status", "target", "config", "secrets")
            if field in given and getattr(body, field) is None
        ]
        if body.definition not in (None, row.definition):
            errors.append(FieldError("definition", "the definition of a trigger cannot change"))
        new = replace(
            row,
            name=body.name or row.name,
            status=body.status or row.status,
            config=row.config
            if body.config is None
            else _collect(errors, lambda: validated_config(definition, body.config)) or {},
        )
        if body.target is not None:
            new = replace(
                new,
                target=_target(body.target),
                target_secret=_encrypted(keyring, body.target.signing_secret)
                if body.target.signing_secret is not None
                else (row.target_secret if body.target.kind == "http" else None),
            )
            errors += target_errors(
                new.target, new.target_secret is not None, kafka_target_policy(request)
            )
            errors += _signing_secret_errors(body.target)
        if "environment_id" in given:
            environment_id = body.environment_id
            new = replace(
                new, environment_id=None if environment_id is None else str(environment_id)
            )
        if body.secrets is not None:
            errors += secret_errors("secrets", body.secrets)
            new = replace(new, secrets=_merged(keyring, row.secrets, body.secrets))
            errors += secret_count_errors(
                "secrets", len(new.secrets), settings.registry.max_secrets
            )
        available = set(new.secrets)
        available |= await _environment_secret_names(conn, project_id, new.environment_id, errors)
        errors += missing_secret_errors(definition, available)
        if errors:
            raise invalid(errors)
        if new != row:
            try:
                row = await save_trigger(
                    conn, new, record_bound=settings.registry.config_record_max_bytes
                )
            except NameConflict as conflict:
                raise ApiError(409, str(conflict)) from None
    return _out(row, request)


@router.delete("/{trigger_id}", status_code=204, responses=documented_errors(404))
async def delete(trigger_id: str, project_id: ProjectId, conn: Connection) -> Response:
    try:
        await delete_trigger(conn, project_id, resource_id(trigger_id, "trigger"))
    except NotFound:
        raise not_found("trigger") from None
    return Response(status_code=204)


@router.post("/{trigger_id}/pause", responses=documented_errors(404))
async def pause(
    trigger_id: str, project_id: ProjectId, conn: Connection, request: Request
) -> TriggerOut:
    return _out(await _set_status(conn, request, project_id, trigger_id, "paused"), request)


@router.post("/{trigger_id}/resume", responses=documented_errors(404))
async def resume(
    trigger_id: str, project_id: ProjectId, conn: Connection, request: Request
) -> TriggerOut:
    return _out(await _set_status(conn, request, project_id, trigger_id, "active"), request)


async def _set_status(
    conn: AsyncConnection[Any],
    request: Request,
    project_id: str,
    trigger_id: str,
    status: TriggerStatus,
) -> TriggerRow:
    async with conn.transaction():
        row = await _find(conn, project_id, trigger_id, lock=True)
        # Pausing a paused trigger changes nothing, so it publishes nothing.
        if row.status == status:
            return row
        return await save_trigger(
            conn,
            replace(row, status=status),
            record_bound=settings_of(request).registry.config_record_max_bytes,
        )


async def _find(
    conn: AsyncConnection[Any], project_id: str, trigger_id: str, *, lock: bool = False
) -> TriggerRow:
    try:
        return await find_trigger(conn, project_id, resource_id(trigger_id, "trigger"), lock=lock)
    except NotFound:
        raise not_found("trigger") from None


async def _environment_secret_names(
    conn: AsyncConnection[Any],
    project_id: str,
    environment_id: str | None,
    errors: list[FieldError],
) -> set[str]:
    if environment_id is None:
        return set()
    try:
        return set(await lock_environment(conn, project_id, environment_id))
    except UnknownEnvironment:
        errors.append(FieldError("environment_id", "no such environment in this project"))
        return set()


def _collect(errors: list[FieldError], check: Any) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = check()
    except Invalid as invalid_config:
        errors.extend(invalid_config.errors)
        return None
    return result


def _target(given: TargetIn) -> Target:
    return Target(
        kind=given.kind,
        ref=given.ref,
        display_name=given.display_name,
        timeout_s=given.timeout_s,
        max_attempts=given.max_attempts,
        max_age_s=given.max_age_s,
    )


def _signing_secret_errors(given: TargetIn) -> list[FieldError]:
    if given.signing_secret is None or is_whsec(given.signing_secret):
        return []
    return [FieldError("target.signing_secret", "signing secrets look like whsec_<base64>")]


def _encrypted(keyring: Keyring, value: str | None) -> str | None:
    return None if value is None else keyring.encrypt(value)


def _merged(
    keyring: Keyring, current: dict[str, str], changes: dict[str, str | None]
) -> dict[str, str]:
    merged = dict(current)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = keyring.encrypt(value)
    return merged


def _out(row: TriggerRow, request: Request) -> TriggerOut:
    target = row.target
    webhook = DEFINITIONS[row.definition].kind == "webhook"
    return TriggerOut(
        id=row.id,
        project_id=row.project_id,
        definition=row.definition,
        name=row.name,
        status=row.status,
        target=TargetOut(
            kind=target.kind,
            ref=target.ref,
            display_name=target.display_name,
            timeout_s=target.timeout_s,
            max_attempts=target.max_attempts,
            max_age_s=target.max_age_s,
            has_signing_secret=row.target_secret is not None,
        ),
        config=row.config,
        environment_id=row.environment_id,
        secret_names=sorted(row.secrets),
        webhook_url=f"{settings_of(request).registry.public_base_url}/webhooks/{row.id}"
        if webhook
        else None,
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _encode_cursor(row: TriggerRow) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, _, trigger_id = base64.urlsafe_b64decode(cursor).decode().partition("|")
        parsed = (datetime.fromisoformat(created_at), str(uuid.UUID(trigger_id)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parsed = None
    if parsed is None or parsed[0].tzinfo is None:
        raise ApiError(400, "malformed request: `cursor` is not one this API issued")
    return parsed
