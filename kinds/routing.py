"""How a trigger's config routes one event: its compiled rules and the decision.

Pure functions over records and compiled trigger config, shared by the processors (which
route live and replayed events) and the control plane (which previews filters and dry-runs
replays), so that a preview can never disagree with what the processors will do. Two steps,
because deduplication sits between them: `normalize` (the trigger's kind) and `decide`: the
trigger's own rules (`screen`: allow-list, then its CEL filter), then each destination's
(`fan_out`: its filter, then its transform), one decision per destination.

Config keys read here, whichever kind declares them: `event_types`, `filter` and `correlation`.
Cron's `schedule`, `timezone` and `misfire` belong to the cron producer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from kinds import KINDS
from kinds.base import Ignored, Normalized, UnroutableEvent
from kinds.config import CEL_DECLARATIONS
from runtime.cel import CelCompileError, CelEvaluationError, CelType, EngineName, Program, compile
from schemas.records import RawEvent, RoutedEvent
from schemas.triggers import (
    REPLAY_DESTINATION,
    DefinitionSlug,
    Destination,
    Target,
    TriggerConfig,
)

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
class RoutingDestination:
    name: str
    target: Target
    filter: Expression | None = None
    transform: Expression | None = None
    # A filter or transform that does not compile: every event is then that destination's
    # filter or transform error, naming the problem.
    filter_error: str | None = None
    transform_error: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingTrigger:
    trigger_id: str
    project_id: str
    definition: DefinitionSlug
    active: bool
    destinations: tuple[RoutingDestination, ...]
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
    def expression(source: object, result_type: CelType) -> Expression | None:
        if not source:
            return None
        program = compile(str(source), CEL_DECLARATIONS, result_type, engine, max_collection_items)
        return Expression(program, engine, str(source), timer)

    event_types = config.config.get("event_types")
    programs: dict[str, Expression | None] = {"filter": None, "correlation": None}
    error = None
    for key, result_type in (("filter", CelType.BOOL), ("correlation", CelType.STRING)):
        try:
            programs[key] = expression(config.config.get(key), result_type)
        except CelCompileError as exc:
            error = f"{key} does not compile: {exc}"
    return RoutingTrigger(
        trigger_id=config.trigger_id,
        project_id=config.project_id,
        definition=config.definition,
        active=config.active,
        destinations=tuple(_destination(d, expression) for d in config.destinations),
        event_types=frozenset(event_types) if event_types else None,
        filter=programs["filter"],
        correlation=programs["correlation"],
        config_error=error,
    )


def _destination(
    destination: Destination, expression: Callable[[object, CelType], Expression | None]
) -> RoutingDestination:
    compiled: dict[str, Expression | None] = {"filter": None, "transform": None}
    errors: dict[str, str | None] = {"filter": None, "transform": None}
    for key, source, result_type in (
        ("filter", destination.filter, CelType.BOOL),
        ("transform", destination.transform, CelType.PAYLOAD),
    ):
        try:
            compiled[key] = expression(source, result_type)
        except CelCompileError as exc:
            errors[key] = f"{key} of destination {destination.name!r} does not compile: {exc}"
    return RoutingDestination(
        name=destination.name,
        target=destination.target,
        filter=compiled["filter"],
        transform=compiled["transform"],
        filter_error=errors["filter"],
        transform_error=errors["transform"],
    )


class Routed(msgspec.Struct, frozen=True):
    event: RoutedEvent


class Skipped(msgspec.Struct, frozen=True):
    """A valid event the trigger's rules (or one destination's filter) chose not to deliver;
    the reason is shown to users."""

    event_id: str
    correlation_id: str | None
    reason: str
    # None when the trigger's own rules skipped the event (for every destination).
    destination: str | None = None


class FilterFailed(msgspec.Struct, frozen=True):
    """A filter could not be evaluated on this event; the message is shown to users."""

    event_id: str
    correlation_id: str
    error: str
    destination: str | None = None


class TransformFailed(msgspec.Struct, frozen=True):
    """A destination's transform could not be evaluated on this event."""

    event_id: str
    correlation_id: str
    error: str
    destination: str


Screened = Skipped | FilterFailed
Decision = Routed | Skipped | FilterFailed | TransformFailed


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


def screen(trigger: RoutingTrigger, event: Normalized) -> Screened | None:
    """Why the trigger's own rules (allow-list, then filter) keep the event from every
    destination; None if they pass it."""
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
    return None


def decide(raw: RawEvent, trigger: RoutingTrigger, event: Normalized) -> list[Decision]:
    """One decision for the event if the trigger's own rules keep it, else one per destination.

    A replay that names an alternate target sends there instead, once, as REPLAY_DESTINATION
    and with the event's own data; a replayed event carries its replay id.
    """
    screened = screen(trigger, event)
    if screened is not None:
        return [screened]
    if raw.replay_target is not None:
        return [Routed(_routed(raw, trigger, event, REPLAY_DESTINATION, raw.replay_target))]
    return [_destination_decision(raw, trigger, event, d) for d in trigger.destinations]


def _destination_decision(
    raw: RawEvent, trigger: RoutingTrigger, event: Normalized, destination: RoutingDestination
) -> Decision:
    name, event_id, correlation_id = destination.name, event.event_id, event.correlation_id
    if destination.filter_error is not None:
        return FilterFailed(event_id, correlation_id, destination.filter_error, name)
    if destination.filter is not None:
        try:
            matched = destination.filter.evaluate(event.fields)
        except CelEvaluationError as exc:
            return FilterFailed(event_id, correlation_id, f"filter failed: {exc}", name)
        if not matched:
            return Skipped(event_id, correlation_id, "destination filter returned false", name)
    if destination.transform_error is not None:
        return TransformFailed(event_id, correlation_id, destination.transform_error, name)
    data: dict[str, Any] | list[Any] | str = event.data
    if destination.transform is not None:
        try:
            data = destination.transform.evaluate(event.fields)
        except CelEvaluationError as exc:
            return TransformFailed(event_id, correlation_id, f"transform failed: {exc}", name)
    return Routed(_routed(raw, trigger, event, name, destination.target, data=data))


def _routed(
    raw: RawEvent,
    trigger: RoutingTrigger,
    event: Normalized,
    destination: str,
    target: Target,
    *,
    data: dict[str, Any] | list[Any] | str | None = None,
) -> RoutedEvent:
    return RoutedEvent(
        id=event.event_id,
        source=f"/triggers/{trigger.trigger_id}",
        type=f"{raw.definition}.{event.event_type}",
        subject=event.correlation_id,
        time=event.time,
        data=event.data if data is None else data,
        triggerid=trigger.trigger_id,
        projectid=trigger.project_id,
        targetkind=target.kind,
        targetref=target.ref,
        receivedat=raw.received_at,
        replay=raw.replay,
        replayid=raw.replay_id,
        destination=destination,
    )
