"""Bounded polling of an external system (Kafka, an HTTP service) for a condition to hold."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout_s: float = 30.0, interval_s: float = 0.2
) -> T:
    """Call `check` until it returns something other than None; TimeoutError after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = await check()
            if result is not None:
                return result
            await asyncio.sleep(interval_s)
