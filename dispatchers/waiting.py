"""Waits a delivery gives up as soon as the dispatcher starts stopping.

A record waiting (to retry, for an open circuit, for its destination's limits) holds no slot
and has made no attempt, so on shutdown it is given back at once rather than waited for.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def unless_stopping(waiting: asyncio.Future[Any], stopping: asyncio.Event) -> bool:
    """Await `waiting` unless shutdown starts first (then cancel it and return False)."""
    if stopping.is_set():
        waiting.cancel()
        return False
    stop: asyncio.Future[Any] = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait((waiting, stop), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        # Cancelled from outside (a revoked partition's worker): nothing may wait on alone.
        waiting.cancel()
        raise
    finally:
        stop.cancel()
    if waiting.done():
        return True
    waiting.cancel()
    return False


async def sleep_unless_stopping(delay_s: float, stopping: asyncio.Event) -> bool:
    """Sleep `delay_s`; False (at once) if shutdown starts first."""
    if delay_s <= 0:
        return not stopping.is_set()
    return await unless_stopping(asyncio.ensure_future(asyncio.sleep(delay_s)), stopping)
