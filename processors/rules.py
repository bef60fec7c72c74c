"""A trigger's routing rules, compiled once per config revision by the trigger-config view.

Config keys read here: `event_types` (slack), `filter` (slack, webhook) and `correlation`
(webhook). Cron's `schedule`, `timezone` and `misfire` belong to the cron producer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from runtime.cel import CelCompileError, CelType, EngineName, Program, compile
from runtime.metrics import PROCESSOR_CEL_EVALUATION
from schemas.definitions import CEL_DECLARATIONS
from schemas.triggers import DefinitionSlug, Target, TriggerConfig


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled CEL expression that times each evaluation for the histogram."""

    program: Program
    engine: EngineName
    # The histogram's child for this engine, looked up once rather than per evaluation.
    _timer: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_timer", PROCESSOR_CEL_EVALUATION.labels(self.engine))

    def evaluate(self, event: dict[str, Any]) -> Any:
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


def compile_routing_trigger(config: TriggerConfig, engine: EngineName) -> RoutingTrigger:
    event_types = config.config.get("event_types")
    programs: dict[str, Expression | None] = {"filter": None, "correlation": None}
    error = None
    for key, result_type in (("filter", CelType.BOOL), ("correlation", CelType.STRING)):
        source = config.config.get(key)
        if not source:
            continue
        try:
            programs[key] = Expression(
                compile(str(source), CEL_DECLARATIONS, result_type, engine), engine
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
