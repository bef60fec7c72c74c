"""A circuit breaker per target endpoint.

After `threshold` consecutive failures the circuit opens for `cooldown_s`; then it is half-open
and lets exactly one probe through. A successful probe closes it, a failed one opens it again.
While it is open, callers wait in `admit()` without making attempts, so records for a dead
endpoint keep their remaining attempts and other endpoints are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from typing import Literal

from runtime.metrics import DISPATCH_CIRCUITS

log = logging.getLogger("triggerline.dispatchers")

CircuitState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        target_kind: str,
        threshold: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kind = target_kind
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._changed = asyncio.Condition()
        self.state: CircuitState = "closed"
        DISPATCH_CIRCUITS.labels(target_kind, "closed").inc()

    async def admit(self) -> None:
        """Wait until an attempt may go out; the caller then reports it with `record`."""
        async with self._changed:
            while True:
                if self.state == "closed":
                    break
                if self.state == "open":
                    remaining = self._opened_at + self._cooldown_s - self._clock()
                    if remaining <= 0:
                        self._set("half_open")
                        continue
                    # Woken early if a probe elsewhere closes the circuit.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), remaining)
                    continue
                if not self._probing:
                    self._probing = True
                    break
                await self._changed.wait()

    async def record(self, success: bool) -> None:
        async with self._changed:
            self._probing = False
            if success:
                self._failures = 0
                self._set("closed")
            else:
                self._failures += 1
                if self.state == "half_open" or self._failures >= self._threshold:
                    self._opened_at = self._clock()
                    self._set("open")
            self._changed.notify_all()

    async def release_probe(self) -> None:
        """An admitted attempt that never happened (cancelled) frees the probe slot."""
        async with self._changed:
            self._probing = False
            self._changed.notify_all()

    def forget(self) -> None:
        """Taken out of its table: it is no longer counted in the circuits gauge."""
        DISPATCH_CIRCUITS.labels(self._kind, self.state).dec()

    def _set(self, state: CircuitState) -> None:
        if state != self.state:
            DISPATCH_CIRCUITS.labels(self._kind, self.state).dec()
            DISPATCH_CIRCUITS.labels(self._kind, state).inc()
            self.state = state


@dataclass(slots=True)
class _Entry:
    breaker: CircuitBreaker
    last_used: float
    # Deliveries holding the breaker (one per record between its first and last attempt).
    users: int = 0


class CircuitBreakers:
    """One breaker per endpoint, created on first use, in a table with a bound and a retention.

    A breaker a delivery holds is never forgotten, so every attempt of that delivery reports to
    the breaker that admitted it; those are bounded by the records in progress. Of the others,
    closed breakers unused for `idle_s` are forgotten; past `max_endpoints`, the least recently
    used closed one goes. An open or half-open breaker is forgotten only when the bound leaves
    no closed one to drop (the least recently used first, with a warning): its endpoint's next
    delivery then starts from a closed circuit, and the endpoint is probed by up to `threshold`
    attempts instead of one.
    """

    def __init__(
        self,
        threshold: int,
        cooldown_s: float,
        *,
        max_endpoints: int,
        idle_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._max_endpoints = max_endpoints
        self._idle_s = idle_s
        self._clock = clock
        # In order of last use, least recent first.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, endpoint: tuple[str, str]) -> bool:
        target_kind, name = endpoint
        return f"{target_kind}:{name}" in self._entries

    @contextlib.contextmanager
    def hold(self, target_kind: str, endpoint: str) -> Iterator[CircuitBreaker]:
        """The endpoint's breaker, kept in the table for as long as the caller holds it."""
        key = f"{target_kind}:{endpoint}"
        entry = self._entries.get(key)
        if entry is None:
            self._make_room()
            breaker = CircuitBreaker(target_kind, self._threshold, self._cooldown_s, self._clock)
            entry = self._entries[key] = _Entry(breaker, self._clock())
        entry.users += 1
        self._touch(key, entry)
        try:
            yield entry.breaker
        finally:
            entry.users -= 1
            self._touch(key, entry)

    def _touch(self, key: str, entry: _Entry) -> None:
        entry.last_used = self._clock()
        self._entries.move_to_end(key)

    def _make_room(self) -> None:
        """Forget idle closed breakers, then enough others to leave room for one more."""
        idle_before = self._clock() - self._idle_s
        idle = []
        for key, entry in self._entries.items():
            if entry.last_used >= idle_before:
                break  # the rest were used later
            if entry.users == 0 and entry.breaker.state == "closed":
                idle.append((key, entry))
        for key, entry in idle:
            self._forget(key, entry)
        excess = len(self._entries) + 1 - self._max_endpoints
        if excess <= 0:
            return
        entries = self._entries.items()
        # Least recently used first within each kind; those held by a delivery never.
        by_preference = chain(
            ((k, e) for k, e in entries if e.users == 0 and e.breaker.state == "closed"),
            ((k, e) for k, e in entries if e.users == 0 and e.breaker.state != "closed"),
        )
        for key, entry in list(islice(by_preference, excess)):
            if entry.breaker.state != "closed":
                log.warning(
                    "circuit table full: forgetting a circuit that is not closed",
                    extra={"endpoint": key, "state": entry.breaker.state},
                )
            self._forget(key, entry)

    def _forget(self, key: str, entry: _Entry) -> None:
        del self._entries[key]
        entry.breaker.forget()
