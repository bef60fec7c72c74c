"""Ingest's replay worker: runs the replays started through the API, one at a time, and
resumes any whose runner died (its lease ran out). Several ingest processes share the work
through the leases; `triggerline replay start` runs a replay in the foreground instead."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ingest.replay import store
from ingest.replay.runner import ReplayRunner
from runtime.cancellation import stop_if_cancelling
from runtime.settings import Settings

log = logging.getLogger("triggerline.replay")

PRUNE_INTERVAL_S = 3600.0


def runner_name(role: str) -> str:
    return f"{role}:{socket.gethostname()}:{os.getpid()}"


class ReplayWorker:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool[AsyncConnection[Any]]) -> None:
        self._settings = settings
        self._pool = pool
        self._owner = runner_name("ingest")
        self._pruned_at = 0.0

    async def run(self) -> None:
        while True:
            try:
                ran = await self._run_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                stop_if_cancelling()
                log.exception("replay worker step failed")
                ran = False
            if not ran:
                await asyncio.sleep(self._settings.replay.poll_interval_s)

    async def _run_one(self) -> bool:
        """Runs the oldest claimable replay, if there is one; whether there was."""
        settings = self._settings.replay
        async with self._pool.connection() as conn:
            if time.monotonic() - self._pruned_at > PRUNE_INTERVAL_S:
                pruned = await store.prune_replays(conn, settings.retention_s)
                self._pruned_at = time.monotonic()
                if pruned:
                    log.info("pruned ended replays", extra={"count": pruned})
            replay = await store.claim(conn, self._owner, settings.lease_s)
            if replay is None:
                return False
            log.info("replay started", extra={"replay_id": replay.id})
            try:
                state = await ReplayRunner(self._settings, replay, self._owner, conn).run()
            except asyncio.CancelledError:
                # Stopping: another runner may resume it at once.
                await asyncio.shield(store.release(conn, replay.id, self._owner))
                raise
            except Exception as exc:
                log.exception("replay failed; it resumes when its lease runs out")
                await store.record_failure(
                    conn, replay.id, self._owner, f"{type(exc).__name__}: {exc}"
                )
                return False
            log.info("replay ended", extra={"replay_id": replay.id, "state": state})
            return True
