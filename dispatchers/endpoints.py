"""The per-endpoint bound on deliveries in progress.

One endpoint (scheme, host and port of an http target, or a kafka topic) may not take more than
its share of the process's in-flight slots, however slow it answers. A delivery first waits for
its endpoint's slot and only then takes a partition and a process slot, so deliveries waiting
on a busy endpoint hold nothing that other endpoints need. An endpoint's entry lives only while
a delivery holds or waits for it, so the table is bounded by the deliveries in progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(slots=True)
class _Endpoint:
    slots: asyncio.Semaphore
    # Deliveries holding or waiting for a slot; the entry goes when none are left.
    users: int = 0


class EndpointSlots:
    def __init__(self, per_endpoint: int) -> None:
        self._per_endpoint = per_endpoint
        self._endpoints: dict[str, _Endpoint] = {}

    def __len__(self) -> int:
        return len(self._endpoints)

    @asynccontextmanager
    async def hold(self, endpoint: str) -> AsyncIterator[None]:
        entry = self._endpoints.get(endpoint)
        if entry is None:
            entry = self._endpoints[endpoint] = _Endpoint(asyncio.Semaphore(self._per_endpoint))
        entry.users += 1
        try:
            async with entry.slots:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._endpoints[endpoint]
