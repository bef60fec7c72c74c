"""One routed record's way through the dispatcher: attempts, waits, and its final outcome.

`deliver_record` returns when the record is finished (delivered, dead-lettered or skipped) and
its delivery-log records are acknowledged. It returns early, unfinished, when the dispatcher is
stopping: the record is then given back, and its retry state lives on in the partition tracker
(and the commit metadata) for whoever consumes the partition next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Literal, Protocol, get_args

from dispatchers.backoff import Backoff, next_due
from dispatchers.circuit import CircuitBreaker, CircuitBreakers
from dispatchers.compiled import DestinationPolicy, DispatchTrigger
from dispatchers.endpoints import EndpointSlots
from dispatchers.journal import Journal
from dispatchers.limits import DestinationLimiter, DestinationLimits
from dispatchers.targets import AttemptResult, endpoint_of
from dispatchers.tracker import RetryState
from dispatchers.waiting import sleep_unless_stopping, unless_stopping
from dispatchers.work_item import AttemptRecord, DeadLetterCause, WorkItem
from runtime.logging import log_context
from runtime.metrics import (
    DEAD_LETTERS_WRITTEN,
    DISPATCH_IN_FLIGHT,
    UNDECODABLE_RECORDS,
    dispatcher_series,
)
from runtime.tracing import Tracing
from schemas.codec import RecordDecodeError
from schemas.records import RoutedEvent
from schemas.topics import ROUTED_EVENTS

log = logging.getLogger("triggerline.dispatchers")

VIEW_RETRY_S = 1.0


class DispatchTriggerLookup(Protocol):
    """What a delivery needs of the trigger-config view (runtime/config_view.py)."""

    async def lookup(self, trigger_id: str) -> DispatchTrigger | None: ...

    def unusable(self, trigger_id: str) -> str | None: ...


class AttemptTarget(Protocol):
    """Makes one delivery attempt and says how it went (dispatchers/targets.py)."""

    async def attempt(
        self, event: RoutedEvent, body: bytes, policy: DestinationPolicy
    ) -> AttemptResult: ...


class Deliverer:
    def __init__(
        self,
        *,
        view: DispatchTriggerLookup,
        targets: AttemptTarget,
        journal: Journal,
        breakers: CircuitBreakers,
        limits: DestinationLimits,
        endpoints: EndpointSlots,
        backoff: Backoff,
        stopping: asyncio.Event,
        tracing: Tracing | None = None,
        group: str | None = None,
    ) -> None:
        self._view = view
        # None while tracing is off: then no record touches a span or a trace header.
        self._tracing = tracing
        self._group = group
        self._endpoints = endpoints
        self._targets = targets
        self._journal = journal
        self._breakers = breakers
        self._limits = limits
        self._backoff = backoff
        self._stopping = stopping
        # Every series is exported from the start: a process's first delivery or letter is then
        # an increase.
        self._series = dispatcher_series()
        self._letters = {
            cause: DEAD_LETTERS_WRITTEN.labels(cause) for cause in get_args(DeadLetterCause)
        }

    async def deliver_record(
        self,
        item: WorkItem,
        slot: AbstractAsyncContextManager[None],
        on_retry: Callable[[RetryState], None],
    ) -> bool:
        """True once the record is finished; False if it was given back because of shutdown."""
        if self._tracing is None:
            return await self._deliver_record(item, slot, on_retry)
        position = item.position
        with (
            self._tracing.processing(
                position.topic,
                group=self._group,
                partition=position.partition,
                offset=position.offset,
                key=item.key,
                headers=item.headers,
            ) as span,
            log_context(trace_id=self._tracing.trace_id(span)),
        ):
            return await self._deliver_record(item, slot, on_retry)

    async def _deliver_record(
        self,
        item: WorkItem,
        slot: AbstractAsyncContextManager[None],
        on_retry: Callable[[RetryState], None],
    ) -> bool:
        try:
            event = ROUTED_EVENTS.decode(item.value, item.position)
        except RecordDecodeError as exc:
            UNDECODABLE_RECORDS.labels("dispatcher").inc()
            log.error("undecodable routed event", extra={"error": str(exc)})
            await self._dead_letter(item, None, "undecodable", str(exc), cause="undecodable")
            return True
        with log_context(
            event_id=event.id,
            correlation_id=event.subject,
            trigger_id=event.triggerid,
            destination=event.destination,
        ):
            return await self._deliver_event(item, event, slot, on_retry)

    async def _deliver_event(
        self,
        item: WorkItem,
        event: RoutedEvent,
        slot: AbstractAsyncContextManager[None],
        on_retry: Callable[[RetryState], None],
    ) -> bool:
        trigger = await self._trigger(event.triggerid)
        if trigger is False:
            return False
        if trigger is None:
            await self._missing(item, event)
            return True
        policy = trigger.policy(event.destination)
        if policy is None:
            # Removed from the trigger since the record was routed: as for a deleted trigger.
            await self._skipped(event, f"destination {event.destination} no longer exists")
            return True
        kind, trigger_id = event.targetkind, trigger.trigger_id
        # Held until the record is finished or given back: the tables keep the breaker and the
        # limiter this record waits for and reports to.
        with (
            self._breakers.hold(kind, trigger_id, event.destination) as breaker,
            self._limits.hold(kind, trigger_id, policy) as limiter,
        ):
            return await self._attempts(
                item,
                event,
                policy=policy,
                breaker=breaker,
                limiter=limiter,
                slot=slot,
                on_retry=on_retry,
            )

    async def _attempts(
        self,
        item: WorkItem,
        event: RoutedEvent,
        *,
        policy: DestinationPolicy,
        breaker: CircuitBreaker,
        limiter: DestinationLimiter,
        slot: AbstractAsyncContextManager[None],
        on_retry: Callable[[RetryState], None],
    ) -> bool:
        """Attempt until the record is finished; False if it was given back because of shutdown."""
        body = item.value or b""
        state = item.retry
        endpoint = f"{event.targetkind}:{endpoint_of(event)}"
        while True:
            if not await self._ready(state, breaker):
                return False
            try:
                # The destination's limits first, then the endpoint's slot: waiting for either
                # holds no partition or process slot.
                async with limiter.admitted(self._stopping) as admitted:
                    if not admitted:
                        await breaker.release_probe()
                        return False
                    async with self._endpoints.hold(endpoint), slot:
                        DISPATCH_IN_FLIGHT.inc()
                        started = time.perf_counter()
                        try:
                            result = await self._targets.attempt(event, body, policy)
                        finally:
                            DISPATCH_IN_FLIGHT.dec()
                        latency_s = time.perf_counter() - started
            except BaseException:
                await breaker.release_probe()
                raise
            if result.retry_after_s is not None:
                # The target asked for a break: the whole destination takes it.
                limiter.pause(result.retry_after_s)
            await breaker.record(result.outcome != "retryable")
            attempt = (state.attempts if state else 0) + 1
            first_at = state.first_attempt_at if state else time.time()
            series = self._series[event.targetkind]
            series.attempt_seconds.observe(latency_s)
            item.history.append(AttemptRecord(attempt, time.time(), result, latency_s))
            if result.outcome == "delivered":
                await self._delivered(event, result, attempt, latency_s)
                return True
            if result.outcome == "permanent":
                await self._give_up(
                    item=item,
                    event=event,
                    result=result,
                    attempt=attempt,
                    latency_s=latency_s,
                    reason="rejected by target",
                    cause="rejected",
                )
                return True
            now = time.time()
            due, reason = next_due(
                policy.retry,
                self._backoff,
                attempts=attempt,
                first_attempt_at=first_at,
                now=now,
                retry_after_s=result.retry_after_s,
            )
            if due is None:
                await self._give_up(
                    item=item,
                    event=event,
                    result=result,
                    attempt=attempt,
                    latency_s=latency_s,
                    reason=reason,
                    cause="retries_exhausted",
                )
                return True
            if result.http_status == 429 and result.retry_after_s is None:
                # Too many requests, without saying for how long: the destination waits as long
                # as this record does.
                limiter.pause(due - now)
            series.deliveries["retrying"].inc()
            await self._journal.record(
                event,
                "retrying",
                attempt=attempt,
                reason=f"next attempt in {due - now:.1f} s",
                http_status=result.http_status,
                error=result.error,
                latency_ms=latency_s * 1000,
            )
            state = RetryState(attempt, first_at, due)
            on_retry(state)

    async def _delivered(
        self, event: RoutedEvent, result: AttemptResult, attempt: int, latency_s: float
    ) -> None:
        series = self._series[event.targetkind]
        series.deliveries["delivered"].inc()
        await self._journal.record(
            event,
            "delivered",
            attempt=attempt,
            http_status=result.http_status,
            latency_ms=latency_s * 1000,
        )
        series.end_to_end_seconds.observe((datetime.now(UTC) - event.receivedat).total_seconds())

    async def _give_up(
        self,
        *,
        item: WorkItem,
        event: RoutedEvent,
        result: AttemptResult,
        attempt: int,
        latency_s: float,
        reason: str,
        cause: DeadLetterCause,
    ) -> None:
        self._series[event.targetkind].deliveries["failed"].inc()
        await self._journal.record(
            event,
            "failed",
            attempt=attempt,
            http_status=result.http_status,
            error=result.error,
            latency_ms=latency_s * 1000,
        )
        await self._dead_lettered(
            item, event, reason=reason, error=result.error, cause=cause, attempt=attempt
        )

    async def _skipped(self, event: RoutedEvent, reason: str) -> None:
        self._series[event.targetkind].deliveries["skipped"].inc()
        await self._journal.record(event, "skipped", attempt=0, reason=reason)

    async def _missing(self, item: WorkItem, event: RoutedEvent) -> None:
        unusable = self._view.unusable(event.triggerid)
        if unusable is None:
            await self._skipped(event, "trigger no longer exists")
            return
        # The trigger exists but its config cannot be used here (e.g. a secret this process
        # cannot decrypt): its events are kept, re-drivable once the cause is fixed.
        log.error("trigger config is unusable; dead-lettered", extra={"error": unusable})
        await self._dead_lettered(
            item, event, reason="trigger_unusable", error=unusable, cause="trigger_unusable"
        )

    async def _dead_lettered(
        self,
        item: WorkItem,
        event: RoutedEvent,
        *,
        reason: str,
        error: str | None,
        cause: DeadLetterCause,
        attempt: int = 0,
    ) -> None:
        """The event's letter is written, then its final delivery-log step."""
        await self._dead_letter(item, event, reason, error, cause=cause)
        self._series[event.targetkind].deliveries["dead_lettered"].inc()
        await self._journal.record(
            event, "dead_lettered", attempt=attempt, reason=reason, error=error
        )

    async def _dead_letter(
        self,
        item: WorkItem,
        event: RoutedEvent | None,
        reason: str,
        error: str | None,
        *,
        cause: DeadLetterCause,
    ) -> None:
        await self._journal.dead_letter(
            topic=item.position.topic,
            partition=item.position.partition,
            offset=item.position.offset,
            key=item.key,
            value=item.value,
            event=event,
            reason=reason,
            error=error,
            attempts=[attempt.entry() for attempt in item.history],
        )
        self._letters[cause].inc()

    async def _ready(self, state: RetryState | None, breaker: CircuitBreaker) -> bool:
        """Wait until the record is due and its destination's circuit admits it; False if
        stopping."""
        if state is not None and not await self._wait_until(state.due_at):
            return False
        # While the circuit is open the record waits here without spending an attempt.
        return breaker.state == "closed" or await unless_stopping(
            asyncio.ensure_future(breaker.admit()), self._stopping
        )

    async def _trigger(self, trigger_id: str) -> DispatchTrigger | Literal[False] | None:
        """The trigger's compiled config, None if it no longer exists, False if stopping.

        An unknown id makes the view catch up with the topic first; if the topic cannot be read
        just now, the record waits rather than being skipped for a trigger that may exist.
        """
        while True:
            try:
                return await self._view.lookup(trigger_id)
            except TimeoutError:
                log.warning("trigger config view is not catching up; waiting")
                if not await self._wait_until(time.time() + VIEW_RETRY_S):
                    return False

    async def _wait_until(self, due_at: float) -> bool:
        return await sleep_unless_stopping(due_at - time.time(), self._stopping)
