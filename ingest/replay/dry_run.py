"""What a replay would do, without producing or delivering anything: its range is read and
every selected event is decided by the same code the processors run (`kinds.routing`), with
the trigger's current rules or the request's filter and event types.

A replay is never deduplicated, so neither is its dry run. Its figures are the processors'
decisions on the trigger's own rules: an event counts as routed when they pass it, whatever
its destinations' filters then decide. Delivery outcomes are not predicted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

from ingest.registry.errors import FieldError, Invalid, NotFound
from ingest.registry.store import find_trigger
from ingest.replay.raw_history import read_spans, spans_between
from ingest.replay.requests import CheckedRequest
from ingest.replay.rules import routing_rules
from ingest.replay.selection import Selector
from kinds.base import Ignored, Normalized, UnroutableEvent
from kinds.filter_explain import WHOLE_FILTER_FALSE, FilterClauses, compile_clauses
from kinds.routing import (
    FilterFailed,
    RoutingTrigger,
    Skipped,
    normalize,
    oversized_correlation,
    screen,
)
from runtime.kafka import whole_topic_consumer
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import RAW_EVENTS

# Distinct reasons kept per trigger and outcome; the rest are counted under OTHER_REASONS.
MAX_REASONS = 20
OTHER_REASONS = "(other reasons)"
GONE = "trigger no longer exists"


@dataclass
class TriggerDryRun:
    trigger_id: str
    name: str | None
    selected: int = 0
    routed: int = 0
    # Reason -> events: skipped by the rules, or ignored (handshakes, paused, deleted).
    skipped: Counter[str] = field(default_factory=Counter)
    # Reason -> events: filter errors and events the processors would dead-letter.
    failed: Counter[str] = field(default_factory=Counter)

    def count(self, outcome: Counter[str], reason: str) -> None:
        if reason not in outcome and len(outcome) >= MAX_REASONS:
            reason = OTHER_REASONS
        outcome[reason] += 1


@dataclass
class DryRunReport:
    scanned: int = 0
    triggers: dict[str, TriggerDryRun] = field(default_factory=dict)

    @property
    def selected(self) -> int:
        return sum(t.selected for t in self.triggers.values())

    @property
    def routed(self) -> int:
        return sum(t.routed for t in self.triggers.values())

    @property
    def skipped(self) -> int:
        return sum(t.skipped.total() for t in self.triggers.values())

    @property
    def failed(self) -> int:
        return sum(t.failed.total() for t in self.triggers.values())


@dataclass(frozen=True, slots=True)
class CompiledTrigger:
    rules: RoutingTrigger
    name: str
    # The filter's top-level clauses, to say which one a miss failed on.
    clauses: FilterClauses | None


class RulesCache:
    """Each trigger's rules, compiled once per dry run; None for a deleted trigger."""

    def __init__(
        self,
        conn: AsyncConnection[Any],
        settings: Settings,
        project_id: str,
        request: CheckedRequest,
    ) -> None:
        self._conn = conn
        self._settings = settings
        self._project_id = project_id
        self._request = request
        self._rules: dict[str, CompiledTrigger | None] = {}

    async def get(self, trigger_id: str) -> CompiledTrigger | None:
        if trigger_id not in self._rules:
            self._rules[trigger_id] = await self._load(trigger_id)
        return self._rules[trigger_id]

    async def _load(self, trigger_id: str) -> CompiledTrigger | None:
        row = self._request.triggers.get(trigger_id)
        if row is None:
            try:
                row = await find_trigger(self._conn, self._project_id, trigger_id)
            except NotFound:
                return None
        cel = self._settings.cel
        rules = routing_rules(row, cel, self._request.overrides)
        clauses = None
        if rules.filter is not None and rules.config_error is None:
            clauses = compile_clauses(rules.filter.source, cel.engine, cel.max_collection_items)
        return CompiledTrigger(rules, row.name, clauses)


async def dry_run(
    conn: AsyncConnection[Any], settings: Settings, project_id: str, request: CheckedRequest
) -> DryRunReport:
    selection = request.selection
    selector = Selector(project_id, selection.trigger_ids, selection.event_ids)
    rules = RulesCache(conn, settings, project_id, request)
    report = DryRunReport()
    max_correlation = settings.processor.max_correlation_id_bytes
    consumer = await whole_topic_consumer(settings, RAW_EVENTS.name(settings.topics.prefix))
    try:
        spans = await spans_between(consumer, selection.from_time, selection.to_time)
        total = sum(span.size for span in spans.values())
        bound = settings.replay.dry_run_max_records
        if total > bound:
            raise Invalid(
                [
                    FieldError(
                        "from",
                        f"the range holds {total} raw records, more than a dry run reads "
                        f"({bound}, TRIGGERLINE_REPLAY_DRY_RUN_MAX_RECORDS); narrow it",
                    )
                ]
            )
        async for records in read_spans(consumer, spans):
            report.scanned += len(records)
            for record in records:
                if record.event is None or not selector.selects(record):
                    continue
                compiled = await rules.get(record.event.trigger_id)
                _decide(report, record.event, compiled, max_correlation)
    finally:
        await consumer.stop()
    return report


def _decide(
    report: DryRunReport,
    raw: RawEvent,
    compiled: CompiledTrigger | None,
    max_correlation: int,
) -> None:
    """Counts the processors' decision for one replayed event (processors/handler.py)."""
    trigger = report.triggers.get(raw.trigger_id)
    if trigger is None:
        name = None if compiled is None else compiled.name
        trigger = report.triggers[raw.trigger_id] = TriggerDryRun(raw.trigger_id, name)
    trigger.selected += 1
    if compiled is None:
        trigger.count(trigger.skipped, GONE)
        return
    rules = compiled.rules
    try:
        event = normalize(raw, rules)
    except UnroutableEvent as exc:
        trigger.count(trigger.failed, f"unroutable: {exc}")
        return
    if isinstance(event, Ignored):
        trigger.count(trigger.skipped, event.reason)
        return
    problem = oversized_correlation(event, max_correlation)
    if problem is not None:
        trigger.count(trigger.failed, problem)
        return
    decision = screen(rules, event)
    if decision is None:
        trigger.routed += 1
    elif isinstance(decision, Skipped):
        trigger.count(trigger.skipped, _skip_reason(decision, event, compiled))
    elif isinstance(decision, FilterFailed):
        trigger.count(trigger.failed, decision.error)


def _skip_reason(decision: Skipped, event: Normalized, compiled: CompiledTrigger) -> str:
    """The processors' reason, or for a filter's miss the clause that decided it."""
    rules = compiled.rules
    type_allowed = rules.event_types is None or event.event_type in rules.event_types
    if compiled.clauses is None or not type_allowed:
        return decision.reason
    explanation = compiled.clauses.explain(event.fields)
    return decision.reason if explanation.reason == WHOLE_FILTER_FALSE else explanation.reason
