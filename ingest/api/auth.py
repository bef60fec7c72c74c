"""`current_project`: the FastAPI dependency that turns a bearer API key into a project id.

Every control-plane route depends on it and scopes every query to the project it returns, so
another project's resources look exactly like missing ones (404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ingest.api.database import Connection
from ingest.api.errors import ApiError
from ingest.registry.api_keys import project_for_key

# auto_error=False: a missing header is answered by us with 401, not by FastAPI with 403.
_bearer = HTTPBearer(auto_error=False, description="A project API key: `Bearer tl_...`")


async def current_project(
    conn: Connection,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "missing API key; send `Authorization: Bearer <key>`")
    project_id = await project_for_key(conn, credentials.credentials)
    if project_id is None:
        raise ApiError(401, "invalid API key")
    return project_id


ProjectId = Annotated[str, Depends(current_project)]
