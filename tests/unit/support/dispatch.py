"""Routed events and single http attempts for dispatcher unit tests (no Kafka involved)."""

from __future__ import annotations

from datetime import UTC, datetime

from dispatchers.backoff import RetryPolicy
from dispatchers.compiled import DispatchTrigger
from dispatchers.targets import AttemptResult, Targets
from runtime.kafka_targets import KafkaTargetPolicy
from schemas.records import RoutedEvent
from schemas.triggers import TargetKind


def routed(kind: TargetKind, ref: str) -> RoutedEvent:
    now = datetime.now(UTC)
    return RoutedEvent(
        id="ev-1",
        source="test",
        type="test.event",
        subject="conv-1",
        time=now,
        data={},
        triggerid="t-1",
        projectid="p-1",
        targetkind=kind,
        targetref=ref,
        receivedat=now,
    )


async def attempt_http(ref: str, *, allow_private: bool) -> AttemptResult:
    """One signed http attempt at `ref`, through a Targets of its own."""
    targets = Targets(
        None,  # http deliveries do not produce to Kafka
        allow_private=allow_private,
        max_connections=1,
        kafka_topics=KafkaTargetPolicy("triggerline"),
    )
    trigger = DispatchTrigger("t-1", "p-1", 5.0, RetryPolicy(3, 60.0), b"k" * 32)
    await targets.start()
    try:
        return await targets.attempt(routed("http", ref), b"{}", trigger)
    finally:
        await targets.close()
