"""`/api-keys`: list a project's keys (never their material) and revoke one.

Keys are made with `triggerline projects create-key`, which shows each only once.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel

from ingest.api.auth import ProjectId
from ingest.api.database import Connection
from ingest.api.dependencies import documented_errors, resource_id
from ingest.registry.api_keys import list_api_keys, revoke_api_key
from ingest.registry.errors import NotFound

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


class ApiKeyOut(BaseModel):
    id: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


@router.get("", responses=documented_errors())
async def list_(project_id: ProjectId, conn: Connection) -> list[ApiKeyOut]:
    return [
        ApiKeyOut(
            id=row.key_id,
            key_prefix=row.key_prefix,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )
        for row in await list_api_keys(conn, project_id)
    ]


@router.delete("/{key_id}", status_code=204, responses=documented_errors(404))
async def revoke(key_id: str, project_id: ProjectId, conn: Connection) -> Response:
    """Revoke a key; it is refused (401) from the next request on, including this caller's."""
    if not await revoke_api_key(conn, project_id, resource_id(key_id, "live API key")):
        raise NotFound("live API key")
    return Response(status_code=204)
