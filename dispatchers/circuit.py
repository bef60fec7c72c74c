"""A circuit breaker per target endpoint.

After `threshold` consecutive failures the circuit opens for `cooldown_s`; then it is half-open
and lets exactly one probe through. A successful probe closes it, a failed one opens it again.
While it is open, callers wait in `admit()` without making attempts, so records for a dead
endpoint keep their remaining attempts and other endpoints are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Literal

from runtime.metrics import DISPATCH_CIRCUITS

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

    def _set(self, state: CircuitState) -> None:
        if state != self.state:
            DISPATCH_CIRCUITS.labels(self._kind, self.state).dec()
            DISPATCH_CIRCUITS.labels(self._kind, state).inc()
            self.state = state


class CircuitBreakers:
    """One breaker per endpoint, created on first use."""

    def __init__(self, threshold: int, cooldown_s: float) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._breakers: dict[str, CircuitBreaker] = {}

    def for_endpoint(self, target_kind: str, endpoint: str) -> CircuitBreaker:
        key = f"{target_kind}:{endpoint}"
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(target_kind, self._threshold, self._cooldown_s)
            self._breakers[key] = breaker
        return breaker
