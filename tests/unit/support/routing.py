"""Compiled triggers, raw events and one routing decision, for unit tests of routing."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from kinds.base import Ignored
from kinds.routing import Decision, RoutingTrigger, compile_routing_trigger, decide, normalize
from runtime.cel import EngineName
from schemas.records import RawEvent
from schemas.triggers import DEFAULT_DESTINATION, DefinitionSlug, Destination, Target, TriggerConfig

RECEIVED = datetime(2026, 11, 27, tzinfo=UTC)


def trigger(
    definition: DefinitionSlug = "slack",
    engine: EngineName = "cel-expr-python",
    status: str = "active",
    destinations: tuple[Destination, ...] = (Destination(DEFAULT_DESTINATION, Target("noop")),),
    **config: object,
) -> RoutingTrigger:
    return compile_routing_trigger(
        TriggerConfig(
            trigger_id="t1",
            project_id="p1",
            definition=definition,
            name="n",
            status="active" if status == "active" else "paused",
            destinations=destinations,
            updated_at=RECEIVED,
            revision=1,
            config=dict(config),
        ),
        engine,
        max_collection_items=1000,
    )


def raw(
    body: object,
    content_type: str = "application/json",
    definition: DefinitionSlug = "slack",
    headers: dict[str, str] | None = None,
) -> RawEvent:
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    if content_type != "application/json":
        text = "payload=" + text
    return RawEvent(
        id="r1",
        trigger_id="t1",
        project_id="p1",
        definition=definition,
        received_at=RECEIVED,
        content_type=content_type,
        body=text,
        headers=headers or {},
    )


def run_all(event: RawEvent, rules: RoutingTrigger) -> list[Decision] | Ignored:
    """The decisions for the event: one per destination, or one for all of them."""
    normalized = normalize(event, rules)
    if isinstance(normalized, Ignored):
        return normalized
    return decide(event, rules, normalized)


def run(event: RawEvent, rules: RoutingTrigger) -> Decision | Ignored:
    """The one decision for an event of a trigger with one destination."""
    decisions = run_all(event, rules)
    if isinstance(decisions, Ignored):
        return decisions
    (decision,) = decisions
    return decision


# A webhook body with a nested object, for correlation and filter expressions.
ORDER = {"type": "order.paid", "order": {"id": "o-17", "customer": "c-3"}}
