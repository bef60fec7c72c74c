"""Ingest's replay worker stops when ingest stops, even when the database driver turns the
cancellation into an error of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from ingest.replay.worker import ReplayWorker
from runtime.settings import Settings

pytestmark = pytest.mark.unit


class QueryCanceled(Exception):
    """What psycopg raises when the query a cancellation interrupted is cancelled."""


class HangingPool:
    """A pool whose connections wait forever and answer a cancellation with an error."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise QueryCanceled("canceling statement due to user request") from None
        yield None


def test_a_cancelled_worker_stops_though_the_driver_swallowed_the_cancellation() -> None:
    async def scenario() -> asyncio.Task[None]:
        pool = HangingPool()
        worker = ReplayWorker(Settings(), cast(Any, pool))
        task = asyncio.create_task(worker.run())
        await pool.entered.wait()
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        return task

    # Not asyncio.run: it would wait for a worker that does not stop, instead of failing.
    loop = asyncio.new_event_loop()
    try:
        task = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert task.done(), "the worker went on after it was cancelled"
    assert task.cancelled()
