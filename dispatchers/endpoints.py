"""The per-endpoint bound on deliveries in progress.

One endpoint (scheme, host and port of an http target, or a kafka topic) may not take more than
its share of the process's in-flight slots, however slow it answers. A delivery first waits for
its endpoint's slot and only then takes a partition and a process slot, so deliveries waiting
on a busy endpoint hold nothing that other endpoints need. An endpoint's entry lives only while
a delivery holds or waits for it, so the table is bounded by the deliveries in progress.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
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

    def hold(self, endpoint: str) -> AbstractAsyncContextManager[None]:
        """A slot of the endpoint's, for as long as the block runs."""
        return _EndpointSlot(self._endpoints, self._per_endpoint, endpoint)


class _EndpointSlot:
    # A class rather than an async generator: one is entered per delivery attempt.
    __slots__ = ("_endpoint", "_endpoints", "_entry", "_per_endpoint")

    def __init__(self, endpoints: dict[str, _Endpoint], per_endpoint: int, endpoint: str) -> None:
        self._endpoints = endpoints
        self._per_endpoint = per_endpoint
        self._endpoint = endpoint
        self._entry: _Endpoint | None = None

    async def __aenter__(self) -> None:
        entry = self._endpoints.get(self._endpoint)
        if entry is None:
            entry = _Endpoint(asyncio.Semaphore(self._per_endpoint))
            self._endpoints[self._endpoint] = entry
        entry.users += 1
        try:
            await entry.slots.acquire()
        except BaseException:
            self._leave(entry)
            raise
        self._entry = entry

    async def __aexit__(self, *_: object) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            entry.slots.release()
            self._leave(entry)

    def _leave(self, entry: _Endpoint) -> None:
        entry.users -= 1
        if entry.users == 0:
            del self._endpoints[self._endpoint]
