"""For any raw record and any trigger config the registry accepts, the handler returns records
the producer takes (a decision, or a dead letter) and never raises: the output stub enforces
the record bound as the producer does, raising aiokafka's MessageSizeTooLargeError. Triggers
have one to three destinations, each with or without a filter and a transform."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kinds import KINDS
from kinds.routing import compile_routing_trigger
from processors.dedupe import PartitionMarks
from processors.dedupe_store import DedupeStore, StoreMemory
from processors.handler import RawEventHandler
from runtime.cel import ENGINES, EngineName
from schemas.triggers import DefinitionSlug, Destination, Target, TriggerConfig
from tests.unit.support.handler import PREFIX, PROJECT, BoundedOutput, CompiledTriggers, raw_record

pytestmark = pytest.mark.unit


def doubling(expression: str, times: int) -> str:
    return expression if times == 0 else doubling(f"({expression}+{expression})", times - 1)


FILTERS = [
    "true",
    'event.text.contains("deploy")',
    "size(event.a + event.a) > 0",
    f"size({doubling('event.a', 8)}) > 0",
    "event.a == event.missing",
]
TRANSFORMS = [
    "event.a",
    '{"t": event.text, "n": event.n}',
    "[event.text, event.text, event.text]",
    "event.n",
    doubling("event.a", 8),
]
CORRELATIONS = ["event.a", doubling("event.a", 8), 'event.a + ":" + event.a', "string(event.n)"]
SLACK_TYPES = ["message", "app_mention", "reaction_added"]
# Field sizes that cross the limits: the correlation bound, and (copied) the record bound.
SIZES = [0, 30, 300, 20_000, 1_500_000, 2_500_000]


@st.composite
def configs(draw: st.DrawFn, definition: DefinitionSlug) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if definition == "slack":
        config["event_types"] = draw(st.lists(st.sampled_from(SLACK_TYPES), min_size=1))
    if definition == "cron":
        config["schedule"] = draw(st.sampled_from(["* * * * *", "0 9 * * 1-5", "bad"]))
    if definition != "cron" and draw(st.booleans()):
        config["filter"] = draw(st.sampled_from(FILTERS) | st.text(max_size=20))
    if definition == "webhook" and draw(st.booleans()):
        config["correlation"] = draw(st.sampled_from(CORRELATIONS) | st.text(max_size=20))
    try:
        return KINDS[definition].validate_config(config)
    except ValidationError:
        assume(False)
        raise


@st.composite
def bodies(draw: st.DrawFn, definition: DefinitionSlug) -> dict[str, Any]:
    small = draw(st.sampled_from(SIZES[:4]))
    big = draw(st.sampled_from(SIZES))
    fields: dict[str, Any] = {
        "a": "x" * small,
        "text": "y" * big,
        "n": draw(st.integers(-(2**63), 2**63 - 1)),
    }
    if definition != "slack":
        return fields
    event = {
        "type": draw(st.sampled_from(SLACK_TYPES)),
        "channel": "C" * draw(st.sampled_from(SIZES[:4])),
    }
    if draw(st.booleans()):
        event["thread_ts"] = "1" * draw(st.sampled_from(SIZES[:4]))
    return {
        "type": "event_callback",
        "event_id": draw(st.text(min_size=1, max_size=8)),
        "event": {**fields, **event},
    }


@st.composite
def destinations(draw: st.DrawFn) -> tuple[Destination, ...]:
    count = draw(st.integers(1, 3))
    return tuple(
        Destination(
            f"d{n}",
            Target("noop"),
            filter=draw(st.none() | st.sampled_from(FILTERS)),
            transform=draw(st.none() | st.sampled_from(TRANSFORMS)),
        )
        for n in range(count)
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[TriggerConfig, dict[str, Any], EngineName]:
    definition: DefinitionSlug = draw(st.sampled_from(["slack", "webhook", "cron"]))
    config = TriggerConfig(
        trigger_id="t1",
        project_id=PROJECT,
        definition=definition,
        name="t1",
        status=draw(st.sampled_from(["active", "paused"])),
        destinations=draw(destinations()),
        updated_at=datetime.now(UTC),
        revision=1,
        config=draw(configs(definition)),
    )
    return config, draw(bodies(definition)), draw(st.sampled_from(ENGINES))


def slack_case(text_bytes: int) -> tuple[TriggerConfig, dict[str, Any], EngineName]:
    config = TriggerConfig(
        trigger_id="t1",
        project_id=PROJECT,
        definition="slack",
        name="t1",
        status="active",
        target=Target("noop"),
        updated_at=datetime.now(UTC),
        revision=1,
        config=KINDS["slack"].validate_config({"event_types": ["message"]}),
    )
    event = {"type": "message", "channel": "C1", "text": "y" * text_bytes}
    return config, {"type": "event_callback", "event_id": "Ev1", "event": event}, "celpy"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(cases())
# The routed event carries a Slack event's text twice, so 2.5 MB in is 5 MB out.
@example(slack_case(2_500_000))
def test_the_handler_returns_records_the_producer_takes(
    case: tuple[TriggerConfig, dict[str, Any], EngineName],
) -> None:
    config, body, engine = case
    view = CompiledTriggers(compile_routing_trigger(config, engine, max_collection_items=1000))
    handler = RawEventHandler(view, PREFIX, max_correlation_id_bytes=256)
    record = raw_record("t1", config.definition, body, {"webhook-id": "msg_1"})
    output = BoundedOutput()
    with tempfile.TemporaryDirectory() as directory:
        store = DedupeStore(Path(directory), 3_600_000, StoreMemory.of(8 << 20))
        try:
            output.produce(asyncio.run(handler.handle(record, PartitionMarks(0, store))))
        finally:
            store.close()
    assert output.records
    assert set(output.topics()) <= {"routed-events", "delivery-log", "dead-letters"}
    assert all(letter.reason != "processing_error" for letter in output.dead_letters())
