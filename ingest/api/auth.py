"""Who is calling: a bearer API key names a project.

`ingest.api.gate` authenticates every control-plane request before its body is read and leaves
the project id in the request's state; `current_project`, the dependency every route takes,
reads it there. Every query is scoped to that project, so another project's resources look
exactly like missing ones (404).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection

from ingest.api.errors import ApiError
from ingest.registry.api_keys import project_for_key

PROJECT_STATE = "project_id"
# Declares the scheme in OpenAPI; the gate has already checked the header.
_bearer = HTTPBearer(auto_error=False, description="A project API key: `Bearer tl_...`")


async def authenticate(conn: AsyncConnection[Any], authorization: str | None) -> str:
    """The project of a live key in an `Authorization` header; ApiError 401 otherwise."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "missing API key; send `Authorization: Bearer <key>`")
    project_id = await project_for_key(conn, key.strip())
    if project_id is None:
        raise ApiError(401, "invalid API key")
    return project_id


async def current_project(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    project_id: str | None = getattr(request.state, PROJECT_STATE, None)
    if project_id is None:
        # Only a route outside the gate's prefixes gets here: fail closed.
        raise ApiError(401, "missing API key; send `Authorization: Bearer <key>`")
    return project_id


ProjectId = Annotated[str, Depends(current_project)]
