"""A trigger's routing rules, compiled once per config revision by the trigger-config view.

Config keys read here, whichever kind declares them: `event_types`, `filter` and `correlation`.
Cron's `schedule`, `timezone` and `misfire` belong to the cron producer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from kinds.config import CEL_DECLARATIONS
from runtime.cel import CelCompileError, CelType, EngineName, Program, compile
from runtime.config_view import TriggerConfigView
from runtime.metrics import PROCESSOR_CEL_EVALUATION
from runtime.settings import Settings
from schemas.triggers import DefinitionSlug, Target, TriggerConfig

# One evaluation in this many is timed: timing and observing every one cost about a quarter as
# much as the evaluation itself.
TIMING_SAMPLE = 16


class Expression:
    """A compiled CEL expression, compiled once per config revision and evaluated per event."""

    __slots__ = ("_timer", "_until_timed", "engine", "program")

    def __init__(self, program: Program, engine: EngineName) -> None:
        self.program = program
        self.engine = engine
        self._timer = PROCESSOR_CEL_EVALUATION.labels(engine)
        self._until_timed = 0

    def evaluate(self, event: dict[str, Any]) -> Any:
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
    config: TriggerConfig, engine: EngineName, *, max_collection_items: int
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


def routing_view(settings: Settings) -> TriggerConfigView[RoutingTrigger]:
    """The processors' view of the trigger configs, compiled with the deployment's CEL bounds."""
    return TriggerConfigView(
        settings,
        "processor",
        partial(
            compile_routing_trigger,
            engine=settings.cel.engine,
            max_collection_items=settings.cel.max_collection_items,
        ),
    )
