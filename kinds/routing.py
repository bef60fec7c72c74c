"""How a trigger's config routes one event: its compiled rules and the decision.

Pure functions over records and compiled trigger config, shared by the processors (which
route live and replayed events) and the control plane (which previews filters and dry-runs
replays), so that a preview can never disagree with what the processors will do. Two steps,
because deduplication sits between them: `normalize` (the trigger's kind) and `decide`
(allow-list, then the CEL filter).

Config keys read here, whichever kind declares them: `event_types`, `filter` and `correlation`.
Cron's `schedule`, `timezone` and `misfire` belong to the cron producer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from kinds import KINDS
from kinds.base import Ignored, Normalized, UnroutableEvent
from kinds.config import CEL_DECLARATIONS
from runtime.cel import CelCompileError, CelEvaluationError, CelType, EngineName, Program, compile
from schemas.records import RawEvent, RoutedEvent
from schemas.triggers import DefinitionSlug, Target, TriggerConfig

log = logging.getLogger("triggerline.routing")

# One evaluation in this many is timed: timing and observing every one cost about a quarter as
# much as the evaluation itself.
TIMING_SAMPLE = 16


class Timer(Protocol):
    def observe(self, amount: float) -> None: ...


class Expression:
    """A compiled CEL expression, compiled once per config revision and evaluated per event."""

    __slots__ = ("_timer", "_until_timed", "engine", "program", "source")

    def __init__(
        self, program: Program, engine: EngineName, source: str, timer: Timer | None = None
    ) -> None:
        self.program = program
        self.engine = engine
        self.source = source
        self._timer = timer
        self._until_timed = 0

    def evaluate(self, event: dict[str, Any]) -> Any:
        if self._timer is None:
            return self.program.evaluate({"event": event})
        if self._until_timed:
            self._until_timed -= 1
            return self.program.evaluate({"event": event})
        self._until_timed = TIMING_SAMPLE - 1
        started = time.perf_counter()
        try:
            return self.program.evaluate({"event": event})
        finally:
            self._timer.observe(time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class RoutingTrigger:
    trigger_id: str
    project_id: str
    definition: DefinitionSlug
    active: bool
    target: Target
    # None routes every event type.
    event_types: frozenset[str] | None = None
    filter: Expression | None = None
    correlation: Expression | None = None
    # A filter or correlation expression that does not compile (the registry validates them,
    # so this means an engine change or a hand-written record). Every event is then recorded as
    # a filter error naming the problem, rather than silently dropped.
    config_error: str | None = None


def compile_routing_trigger(
    config: TriggerConfig,
    engine: EngineName,
    *,
    max_collection_items: int,
    timer: Timer | None = None,
) -> RoutingTrigger:
    event_types = config.config.get("event_types")
    programs: dict[str, Expression | None] = {"filter": None, "correlation": None}
    error = None
    for key, result_type in (("filter", CelType.BOOL), ("correlation", CelType.STRING)):
        source = config.config.get(key)
        if not source:
            continue
        try:
            programs[key] = Expression(
                compile(str(source), CEL_DECLARATIONS, result_type, engine, max_collection_items),
                engine,
                str(source),
                timer,
            )
        except CelCompileError as exc:
            error = f"{key} does not compile: {exc}"
    return RoutingTrigger(
        trigger_id=config.trigger_id,
        project_id=config.project_id,
        definition=config.definition,
        active=config.active,
        target=config.target,
        event_types=frozenset(event_types) if event_types else None,
        filter=programs["filter"],
        correlation=programs["correlation"],
        config_error=error,
    )


class Routed(msgspec.Struct, frozen=True):
    event: RoutedEvent


class Skipped(msgspec.Struct, frozen=True):
    """A valid event the trigger's rules chose not to deliver; the reason is shown to users."""

    event_id: str
    correlation_id: str | None
    reason: str


class FilterFailed(msgspec.Struct, frozen=True):
    """The trigger's filter could not be evaluated on this event; the message is shown to users."""

    event_id: str
    correlation_id: str
    error: str


Decision = Routed | Skipped | FilterFailed | Ignored


def normalize(raw: RawEvent, trigger: RoutingTrigger) -> Normalized | Ignored:
    if not trigger.active:
        return Ignored(raw.id, "trigger paused")
    kind = KINDS.get(raw.definition)
    if kind is None:
        raise UnroutableEvent(f"no trigger kind {raw.definition!r}")
    event = kind.normalize(raw, trigger.correlation)
    if isinstance(event, Normalized) and event.note is not None:
        log.warning(
            "normalized with a caveat",
            extra={
                "trigger_id": trigger.trigger_id,
                "event_id": event.event_id,
                "note": event.note,
            },
        )
    return event


def oversized_correlation(event: Normalized, max_bytes: int) -> str | None:
    """Why the event's correlation id cannot be used, if it cannot: it is the routed record's
    key and the delivery log's column, and the trigger's correlation expression (or the
    sender's ids) made one over the bound. Recorded as a filter error, so the user sees why."""
    size = len(event.correlation_id.encode())
    if size <= max_bytes:
        return None
    return (
        f"correlation id is {size} bytes, over the limit of "
        f"{max_bytes} (TRIGGERLINE_PROCESSOR_MAX_CORRELATION_ID_BYTES)"
    )


def decide(raw: RawEvent, trigger: RoutingTrigger, event: Normalized) -> Decision:
    """Route, skip or fail the normalized event by the trigger's rules.

    A replayed event goes to the replay's alternate target when it names one, and carries its
    replay id into the routed record.
    """
    if trigger.config_error is not None:
        return FilterFailed(event.event_id, event.correlation_id, trigger.config_error)
    if trigger.event_types is not None and event.event_type not in trigger.event_types:
        allowed = ", ".join(sorted(trigger.event_types))
        return Skipped(
            event.event_id,
            event.correlation_id,
            f"event_type {event.event_type!r} not in [{allowed}]",
        )
    if trigger.filter is not None:
        try:
            matched = trigger.filter.evaluate(event.fields)
        except CelEvaluationError as exc:
            return FilterFailed(event.event_id, event.correlation_id, f"filter failed: {exc}")
        if not matched:
            return Skipped(event.event_id, event.correlation_id, "filter returned false")
    target = raw.replay_target or trigger.target
    return Routed(
        RoutedEvent(
            id=event.event_id,
            source=f"/triggers/{trigger.trigger_id}",
            type=f"{raw.definition}.{event.event_type}",
            subject=event.correlation_id,
            time=event.time,
            data=event.data,
            triggerid=trigger.trigger_id,
            projectid=trigger.project_id,
            targetkind=target.kind,
            targetref=target.ref,
            receivedat=raw.received_at,
            replay=raw.replay,
            replayid=raw.replay_id,
        )
    )
