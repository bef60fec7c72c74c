"""Outbound limits per destination, in one dispatcher process: a rate, a concurrency cap, and
the pauses a target asks for.

Every limit holds per dispatcher process: N dispatchers delivering one destination's records
(its correlation ids spread over their partitions) send up to N times its rate and N times its
`max_concurrency`.

A record waits for its destination's limits after its due time and its circuit, and before
its endpoint's, partition's and process's slots: a record waiting for a token holds nothing
that another destination needs and has spent no attempt. Its lane (correlation id and
destination) waits with it, other lanes go on.

- **Rate:** a token bucket per destination (`per_second`, up to `burst` at once), kept as a
  virtual schedule (GCRA): each record reserves the next turn, in the order they asked, and
  sleeps once until it.
- **Pauses:** a 429, or any answer with Retry-After, pauses the whole destination until then (a
  429 without Retry-After until that record's next attempt is due): no record of it goes out,
  and afterwards its bucket starts empty, one token per interval.
- **Concurrency:** at most `max_concurrency` attempts of the destination in progress at once;
  a changed cap applies to attempts admitted after the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from dispatchers.compiled import DestinationPolicy
from dispatchers.table import HeldTable
from dispatchers.waiting import sleep_unless_stopping
from runtime.metrics import DISPATCH_LIMIT_WAIT, DISPATCH_PAUSED_DESTINATIONS
from schemas.triggers import RateLimit

log = logging.getLogger("triggerline.dispatchers")

# The longest a Retry-After pauses a whole destination. The record that got it still waits as
# long as asked (within its max age); a target's odd or hostile answer cannot silence the
# destination's other records for longer.
MAX_PAUSE_S = 3600.0


class TokenBucket:
    """`per_second` tokens flow in, up to `burst` can be spent at once; starts full.

    Kept as a theoretical arrival time (`_tat`): the bucket is full when it is not in the
    future, and a token may be used once the clock has reached `_tat - tolerance`.
    """

    __slots__ = ("_clock", "_interval", "_tat", "_tolerance", "limit")

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._interval = 1.0 / limit.per_second
        self._tolerance = (max(1, limit.burst) - 1) * self._interval
        self._tat = clock()

    @property
    def full(self) -> bool:
        return self._tat <= self._clock()

    def reserve(self) -> float:
        """Spend the next token: the seconds until it may be used (0.0 for at once)."""
        now = self._clock()
        tat = max(self._tat, now)
        self._tat = tat + self._interval
        return max(0.0, tat - self._tolerance - now)

    def hold_until(self, until: float) -> None:
        """Admit nothing before `until` (a clock time); from then on one token per interval."""
        self._tat = max(self._tat, until + self._tolerance)


class DestinationLimiter:
    def __init__(
        self,
        target_kind: str,
        policy: DestinationPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kind = target_kind
        self._clock = clock
        # Clock time before which nothing goes out.
        self._paused_until = 0.0
        # Ends the pause in the gauge; None while not paused.
        self._pause_timer: asyncio.TimerHandle | None = None
        self._rate: RateLimit | None = None
        self._bucket: TokenBucket | None = None
        self._max_concurrency: int | None = None
        self._slots: asyncio.Semaphore | None = None
        self.configure(policy)

    @property
    def paused(self) -> bool:
        return self._clock() < self._paused_until

    @property
    def settled(self) -> bool:
        """Whether forgetting it loses nothing: not paused and its bucket full. (One with an
        attempt admitted is held by that delivery, so it is never forgotten.)"""
        return not self.paused and (self._bucket is None or self._bucket.full)

    def configure(self, policy: DestinationPolicy) -> None:
        """Follow the destination's current limits (a new config revision may change them): a
        changed rate starts from a full bucket, still held back by a pause in force."""
        if policy.rate_limit != self._rate:
            self._rate = policy.rate_limit
            self._bucket = None if self._rate is None else TokenBucket(self._rate, self._clock)
            if self._bucket is not None and self.paused:
                self._bucket.hold_until(self._paused_until)
        if policy.max_concurrency != self._max_concurrency:
            self._max_concurrency = policy.max_concurrency
            # Attempts admitted before the change release the semaphore they took.
            self._slots = (
                None if self._max_concurrency is None else asyncio.Semaphore(self._max_concurrency)
            )

    def pause(self, seconds: float) -> None:
        """The target asked for a break: nothing goes out for `seconds`, at most `MAX_PAUSE_S`
        (a later end already set stays)."""
        seconds = min(seconds, MAX_PAUSE_S)
        until = self._clock() + seconds
        if seconds <= 0 or until <= self._paused_until:
            return
        self._paused_until = until
        if self._bucket is not None:
            self._bucket.hold_until(until)
        if self._pause_timer is None:
            DISPATCH_PAUSED_DESTINATIONS.inc()
        else:
            self._pause_timer.cancel()
        self._pause_timer = asyncio.get_running_loop().call_later(seconds, self._resumed)

    def _resumed(self) -> None:
        self._pause_timer = None
        DISPATCH_PAUSED_DESTINATIONS.dec()

    def forget(self) -> None:
        """Taken out of its table: a pause in force leaves the gauge."""
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._resumed()

    def admitted(self, stopping: asyncio.Event) -> contextlib.AbstractAsyncContextManager[bool]:
        """Wait for a concurrency slot, the end of any pause and a token; the attempt is made
        inside. Yields False, holding nothing, if the dispatcher started stopping first."""
        return _Admission(self, stopping)

    async def _take_slot(self) -> asyncio.Semaphore | None:
        """A concurrency slot, if the destination has a cap: the semaphore to release it to."""
        slots = self._slots
        if slots is not None:
            if slots.locked():
                started = time.monotonic()
                # Cancelled directly (a revoked partition) the semaphore cleans up after itself;
                # on shutdown the slot frees once an attempt in flight ends.
                await slots.acquire()
                self._waited("concurrency", started)
            else:
                await slots.acquire()
        return slots

    async def _turn(self, stopping: asyncio.Event) -> bool:
        while True:
            pause_s = self._paused_until - self._clock()
            if pause_s > 0:
                if not await self._sleep(pause_s, "retry_after", stopping):
                    return False
                continue
            if self._bucket is None:
                return True
            wait_s = self._bucket.reserve()
            if wait_s <= 0:
                return True
            if not await self._sleep(wait_s, "rate", stopping):
                return False
            # A pause that began while this record slept voids its turn; one reserved past
            # the pause's end is still good (the bucket was held back behind it).
            if not self.paused:
                return True

    async def _sleep(self, seconds: float, limit: str, stopping: asyncio.Event) -> bool:
        started = time.monotonic()
        try:
            return await sleep_unless_stopping(seconds, stopping)
        finally:
            self._waited(limit, started)

    def _waited(self, limit: str, started: float) -> None:
        DISPATCH_LIMIT_WAIT.labels(self._kind, limit).inc(time.monotonic() - started)


class _Admission:
    # A class rather than an async generator: one is entered per delivery attempt.
    __slots__ = ("_limiter", "_slots", "_stopping")

    def __init__(self, limiter: DestinationLimiter, stopping: asyncio.Event) -> None:
        self._limiter = limiter
        self._stopping = stopping
        self._slots: asyncio.Semaphore | None = None

    async def __aenter__(self) -> bool:
        # A changed cap applies to later attempts; this one releases the semaphore it took.
        self._slots = await self._limiter._take_slot()
        try:
            return not self._stopping.is_set() and await self._limiter._turn(self._stopping)
        except BaseException:
            self._release()
            raise

    async def __aexit__(self, *_: object) -> None:
        self._release()

    def _release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()


class _Configured:
    """A held limiter, configured by the policy of the record that holds it."""

    __slots__ = ("_held", "_policy")

    def __init__(
        self, held: contextlib.AbstractContextManager[DestinationLimiter], policy: DestinationPolicy
    ) -> None:
        self._held = held
        self._policy = policy

    def __enter__(self) -> DestinationLimiter:
        limiter = self._held.__enter__()
        try:
            limiter.configure(self._policy)
        except BaseException:
            self._held.__exit__(None, None, None)
            raise
        return limiter

    def __exit__(self, *_: object) -> None:
        self._held.__exit__(None, None, None)


class DestinationLimits:
    """One limiter per destination (trigger id, destination name), in a table with a bound and
    a retention (dispatchers/table.py). A settled limiter (not paused, its bucket full, no
    attempt admitted) is forgotten first; one that is not is forgotten only when the bound
    leaves nothing else, and its destination then starts again with a full bucket."""

    def __init__(
        self,
        *,
        max_destinations: int,
        idle_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._table: HeldTable[tuple[str, str], DestinationLimiter] = HeldTable(
            max_entries=max_destinations,
            idle_s=idle_s,
            settled=lambda limiter: limiter.settled,
            forget=_forget,
            clock=clock,
        )

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, destination: tuple[str, str]) -> bool:
        return destination in self._table

    def hold(
        self, target_kind: str, trigger_id: str, policy: DestinationPolicy
    ) -> contextlib.AbstractContextManager[DestinationLimiter]:
        """The destination's limiter, following `policy`, kept while the caller holds it."""
        held = self._table.hold(
            (trigger_id, policy.name),
            lambda: DestinationLimiter(target_kind, policy, self._clock),
        )
        return _Configured(held, policy)


def _forget(destination: tuple[str, str], limiter: DestinationLimiter) -> None:
    if not limiter.settled:
        log.warning(
            "limiter table full: forgetting a destination's limiter in use",
            extra={"trigger_id": destination[0], "destination": destination[1]},
        )
    limiter.forget()
