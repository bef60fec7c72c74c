"""A circuit breaker per destination (a trigger's destination, whatever its target's endpoint).

After `threshold` consecutive failures the circuit opens for `cooldown_s`; then it is half-open
and lets exactly one probe through. A successful probe closes it, a failed one opens it again.
While it is open, callers wait in `admit()` without making attempts, so records for a dead
destination keep their remaining attempts and other destinations are not affected, even those
of the same trigger or at the same endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Literal

from dispatchers.table import HeldTable
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
        if success and self.state == "closed" and self._failures == 0:
            # Nothing changes, and no caller waits on a closed circuit: the lock is not needed.
            return
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


# A trigger's destination: (trigger id, destination name).
DestinationKey = tuple[str, str]


class CircuitBreakers:
    """One breaker per destination (trigger id, destination name), made on first use, in a
    table with a bound and a retention (dispatchers/table.py): a closed breaker is settled, an
    open or half-open one is not. One forgotten while open starts closed again, so its
    destination is probed by up to `threshold` attempts instead of one (logged as a warning).
    """

    def __init__(
        self,
        threshold: int,
        cooldown_s: float,
        *,
        max_destinations: int,
        idle_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._table: HeldTable[DestinationKey, CircuitBreaker] = HeldTable(
            max_entries=max_destinations,
            idle_s=idle_s,
            settled=lambda breaker: breaker.state == "closed",
            forget=_forget,
            clock=clock,
        )

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, destination: DestinationKey) -> bool:
        return destination in self._table

    def hold(
        self, target_kind: str, trigger_id: str, destination: str
    ) -> contextlib.AbstractContextManager[CircuitBreaker]:
        """The destination's breaker, kept in the table for as long as the caller holds it."""
        return self._table.hold(
            (trigger_id, destination),
            lambda: CircuitBreaker(target_kind, self._threshold, self._cooldown_s, self._clock),
        )


def _forget(destination: DestinationKey, breaker: CircuitBreaker) -> None:
    if breaker.state != "closed":
        log.warning(
            "circuit table full: forgetting a circuit that is not closed",
            extra={"trigger_id": destination[0], "destination": destination[1]},
        )
    breaker.forget()
