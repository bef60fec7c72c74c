"""Events a trigger's own config or sender make unproducible never stop a processor worker:
a `correlation` expression that builds a multi-megabyte id, and a Slack thread id longer than
any correlation id may be, are each a `filter_error` with the reason, and the ordinary event
sent after them is still routed by the same, never restarted, worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import orjson
import pytest

from kinds import KINDS
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.triggers import Target, TriggerConfig
from tests.integration.support.polling import eventually
from tests.integration.support.processor_outputs import (
    processor_decisions,
    raw_events_committed,
    routed_events,
)
from tests.integration.support.processor_records import (
    PROJECT,
    Records,
    slack_message,
    slack_trigger,
)
from tests.integration.support.processor_workers import processor_workers

pytestmark = pytest.mark.integration


def doubling(expression: str, times: int) -> str:
    """`expression` concatenated with itself 2**times over, nested as a balanced tree."""
    return expression if times == 0 else doubling(f"({expression}+{expression})", times - 1)


# 256 copies of a 20,000-character field: a 5 MB correlation id, over the 4 MiB record bound.
DOUBLING_CORRELATION = doubling("event.a", 8)


def webhook_trigger(trigger_id: str, correlation: str) -> TriggerConfig:
    config = KINDS["webhook"].validate_config({"correlation": correlation})
    return TriggerConfig(
        trigger_id=trigger_id,
        project_id=PROJECT,
        definition="webhook",
        name=f"webhook-{trigger_id[:8]}",
        status="active",
        target=Target("noop"),
        updated_at=datetime.now(UTC),
        revision=1,
        config=config,
    )


def webhook_event(trigger_id: str, webhook_id: str, body: dict[str, object]) -> RawEvent:
    return RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger_id,
        project_id=PROJECT,
        definition="webhook",
        received_at=datetime.now(UTC),
        content_type="application/json",
        body=orjson.dumps(body).decode(),
        headers={"webhook-id": webhook_id},
    )


async def test_oversized_correlation_ids_are_filter_errors_and_the_worker_carries_on(
    settings: Settings,
) -> None:
    webhook, slack = str(uuid.uuid4()), str(uuid.uuid4())
    thread = slack_message(slack, "EvLongThread")
    envelope = orjson.loads(thread.body)
    envelope["event"]["thread_ts"] = "1" * 300
    thread = msgspec.structs.replace(thread, body=orjson.dumps(envelope).decode())
    async with Records(settings) as records:
        await records.config(webhook_trigger(webhook, DOUBLING_CORRELATION))
        await records.config(slack_trigger(slack))
        with processor_workers(settings, 1) as group:
            await records.raw(webhook_event(webhook, "msg_huge", {"a": "x" * 20_000}), thread)
            await records.raw(slack_message(slack, "EvOrdinary"))

            async def ordinary_routed() -> bool | None:
                routed = {e.id for e in await routed_events(settings)}
                return (
                    True
                    if "EvOrdinary" in routed and await raw_events_committed(settings)
                    else None
                )

            await eventually(ordinary_routed, timeout_s=60, interval_s=0.5)
            assert [w.process.poll() for w in group.workers] == [None]

    decisions = {d.event_id: d for d in await processor_decisions(settings)}
    for event_id in ("msg_huge", "EvLongThread"):
        assert decisions[event_id].outcome == "filter_error"
        assert decisions[event_id].correlation_id is None
        assert "over the limit of 256" in (decisions[event_id].reason or "")
    assert decisions["EvOrdinary"].outcome == "routed"
