"""The control plane's PostgreSQL connections: one pool per ingest process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from runtime.settings import Settings

# How long a request waits for a connection before it is answered 503.
CONNECTION_WAIT_S = 5.0


def registry_pool(settings: Settings) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A pool that is not open yet; `await pool.open()` returns at once and connects in the
    background, so ingest starts (and serves webhooks) while PostgreSQL is unreachable."""
    return AsyncConnectionPool(
        settings.database.url.get_secret_value(),
        min_size=1,
        max_size=10,
        open=False,
        timeout=CONNECTION_WAIT_S,
        kwargs={"autocommit": True},
        name="registry",
    )


async def registry_connection(request: Request) -> AsyncIterator[AsyncConnection[Any]]:
    pool: AsyncConnectionPool[AsyncConnection[Any]] = request.app.state.registry_pool
    async with pool.connection() as conn:
        yield conn


Connection = Annotated[AsyncConnection[Any], Depends(registry_connection)]
