"""Filter preview: a trigger's rules, or a filter and event-type list to try instead, evaluated
against the trigger's recent raw events, with why each event would or would not be routed.

Each event goes through `kinds.routing.normalize` and `screen` (the trigger's own allow-list
and filter), the processors' own code, so a preview gives the processors' answer; each
destination's filter then applies on top, as its own step. Deduplication is not applied: a
sender's retry of an event shows as a second event. The filter's clauses are compiled once per
preview (`kinds.filter_explain`) to name the clause that decided a miss.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from psycopg import AsyncConnection

from ingest.registry.errors import FieldError, Invalid
from ingest.registry.store import find_trigger
from ingest.replay.rules import RuleOverrides, routing_rules
from ingest.replay.trigger_history import (
    TriggerHistory,
    events_between,
    newest_events,
    trigger_partition,
)
from kinds.base import Ignored, Normalized, UnroutableEvent
from kinds.filter_explain import Explanation, FilterClauses, compile_clauses
from kinds.routing import (
    FilterFailed,
    RoutingTrigger,
    Screened,
    Skipped,
    normalize,
    oversized_correlation,
    screen,
)
from runtime.settings import ProcessorSettings, Settings
from schemas.records import RawEvent

DEFAULT_LAST = 100
DEFAULT_MAX_CORRELATION_ID_BYTES: int = ProcessorSettings.model_fields[
    "max_correlation_id_bytes"
].default
MAX_EVENTS = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Verdict = Literal["match", "miss", "error", "ignored"]
VERDICTS: tuple[Verdict, ...] = ("match", "miss", "error", "ignored")


@dataclass(frozen=True, slots=True)
class PreviewWindow:
    """The newest `last` events, or those ingest received in [since, until)."""

    last: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def preview_window(
    last: int | None, since: datetime | None, until: datetime | None
) -> PreviewWindow:
    """The window asked for, checked; Invalid (422) says what to change. Times without a
    zone are UTC; a range without `until` ends now."""
    if last is not None and (since is not None or until is not None):
        raise Invalid([FieldError("last", "give `last` or a time range (`since`), not both")])
    if since is None:
        if until is not None:
            raise Invalid([FieldError("since", "a time range needs `since`")])
        last = DEFAULT_LAST if last is None else last
        if not 1 <= last <= MAX_EVENTS:
            raise Invalid([FieldError("last", f"must be between 1 and {MAX_EVENTS}")])
        return PreviewWindow(last=last)
    # The broker's time index starts at the epoch; an earlier `since` means from the start.
    since = max(_utc(since), EPOCH)
    until = datetime.now(UTC) if until is None else _utc(until)
    if until <= since:
        raise Invalid([FieldError("until", "must be after `since`")])
    return PreviewWindow(since=since, until=until)


@dataclass(frozen=True, slots=True)
class PreviewedEvent:
    """One event and what the rules would do with it. `reason` says why it is a miss, an
    error or ignored; `clause` (1-based) and `clause_source` name the filter clause that
    decided a miss or failed, when the filter is a conjunction."""

    event_id: str
    received_at: datetime
    verdict: Verdict
    event_type: str | None = None
    correlation_id: str | None = None
    reason: str | None = None
    clause: int | None = None
    clause_source: str | None = None


@dataclass(frozen=True, slots=True)
class FilterPreview:
    trigger_id: str
    # The rules evaluated: the trigger's own, or the overrides.
    filter: str | None
    event_types: list[str] | None
    # Oldest first.
    events: list[PreviewedEvent]
    totals: dict[str, int]
    # Raw records read from the trigger's partition (other triggers' included).
    scanned: int
    scan_bound_reached: bool
    event_limit_reached: bool


async def preview_filter(
    conn: AsyncConnection[Any],
    settings: Settings,
    *,
    project_id: str,
    trigger_id: str,
    overrides: RuleOverrides,
    window: PreviewWindow,
) -> FilterPreview:
    """What the trigger's rules, with `overrides`, would do with each of its events in `window`.

    NotFound (404) for another project's trigger; Invalid (422) for an override that would not
    be saved; HistoryUnavailable (503) when Kafka cannot be read."""
    row = await find_trigger(conn, project_id, trigger_id)
    rules = routing_rules(row, settings.cel, overrides)
    clauses = (
        None
        if rules.filter is None
        else compile_clauses(
            rules.filter.source, rules.filter.engine, settings.cel.max_collection_items
        )
    )
    async with trigger_partition(settings, row.id) as (consumer, tp):
        if window.since is not None and window.until is not None:
            history = await events_between(
                consumer, tp, row.id, since=window.since, until=window.until, limit=MAX_EVENTS
            )
        else:
            history = await newest_events(consumer, tp, row.id, window.last or DEFAULT_LAST)
    return previewed(rules, clauses, history, settings.processor.max_correlation_id_bytes)


def previewed(
    rules: RoutingTrigger,
    clauses: FilterClauses | None,
    history: TriggerHistory,
    max_correlation_id_bytes: int,
) -> FilterPreview:
    events = [verdict_of(raw, rules, clauses, max_correlation_id_bytes) for raw in history.events]
    totals: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    for event in events:
        totals[event.verdict] += 1
    return FilterPreview(
        trigger_id=rules.trigger_id,
        filter=None if rules.filter is None else rules.filter.source,
        event_types=None if rules.event_types is None else sorted(rules.event_types),
        events=events,
        totals=totals,
        scanned=history.scanned,
        scan_bound_reached=history.scan_bound_reached,
        event_limit_reached=history.event_limit_reached,
    )


def verdict_of(
    raw: RawEvent,
    rules: RoutingTrigger,
    clauses: FilterClauses | None,
    max_correlation_id_bytes: int = DEFAULT_MAX_CORRELATION_ID_BYTES,
) -> PreviewedEvent:
    """What the processors would do with this raw event under these rules."""
    try:
        event = normalize(raw, rules)
    except UnroutableEvent as exc:
        return PreviewedEvent(raw.id, raw.received_at, "error", reason=f"unroutable: {exc}")
    if isinstance(event, Ignored):
        return PreviewedEvent(event.event_id, raw.received_at, "ignored", reason=event.reason)
    oversized = oversized_correlation(event, max_correlation_id_bytes)
    if oversized is not None:
        return PreviewedEvent(event.event_id, raw.received_at, "error", reason=oversized)
    verdict, reason, explanation = _judged(screen(rules, event), event, rules, clauses)
    return PreviewedEvent(
        event.event_id,
        raw.received_at,
        verdict,
        event_type=event.event_type,
        correlation_id=event.correlation_id,
        reason=reason,
        clause=None if explanation is None else explanation.clause,
        clause_source=None if explanation is None else explanation.clause_source,
    )


def _judged(
    decision: Screened | None,
    event: Normalized,
    rules: RoutingTrigger,
    clauses: FilterClauses | None,
) -> tuple[Verdict, str | None, Explanation | None]:
    if isinstance(decision, Skipped):
        # The allow-list is checked before the filter: a skipped event of an allowed type is
        # the filter's miss.
        type_allowed = rules.event_types is None or event.event_type in rules.event_types
        if clauses is None or not type_allowed:
            return "miss", decision.reason, None
        explanation = clauses.explain(event.fields)
        return "miss", explanation.reason, explanation
    if isinstance(decision, FilterFailed):
        return _failed(decision, event, rules, clauses)
    return "match", None, None


def _failed(
    decision: FilterFailed,
    event: Normalized,
    rules: RoutingTrigger,
    clauses: FilterClauses | None,
) -> tuple[Verdict, str | None, Explanation | None]:
    # A stored filter that does not compile has no clauses to blame; a conjunction fails
    # through one of its clauses, and its message names that clause.
    explanation = None
    if clauses is not None and rules.config_error is None:
        explanation = clauses.explain(event.fields)
    if explanation is None or explanation.error is None:
        return "error", decision.error, None
    return "error", explanation.reason, explanation


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
