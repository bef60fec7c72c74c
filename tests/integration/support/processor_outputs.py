"""What processor workers wrote and committed, read back from the broker, and the
exactly-once assertions over it."""

from __future__ import annotations

from collections import Counter

from runtime.settings import Settings
from schemas.records import DeliveryLogRecord, RoutedEvent
from schemas.topics import DELIVERY_LOG, RAW_EVENTS, ROUTED_EVENTS
from tests.integration.support.consumer_groups import uncommitted
from tests.integration.support.polling import eventually
from tests.integration.support.processor_records import Sent
from tests.integration.support.topic_reader import read_all


async def routed_grows_by(settings: Settings, count: int, timeout_s: float = 90) -> int:
    """Waits until `count` more routed records are on the topic than now."""
    target = len(await routed_events(settings)) + count

    async def grown() -> int | None:
        routed = len(await routed_events(settings))
        return routed if routed >= target else None

    return await eventually(grown, timeout_s=timeout_s, interval_s=0.5)


async def all_routed(
    settings: Settings, expected: int, timeout_s: float = 120
) -> list[RoutedEvent]:
    """The routed topic once the group has committed every raw event (nothing more can come)."""

    async def done() -> list[RoutedEvent] | None:
        if not await raw_events_committed(settings):
            return None
        events = await routed_events(settings)
        return events if len(events) >= expected else None

    try:
        return await eventually(done, timeout_s=timeout_s, interval_s=1.0)
    except TimeoutError:
        behind = await uncommitted_raw_events(settings)
        routed = len(await routed_events(settings))
        raise AssertionError(
            f"{routed} of {expected} events routed; uncommitted raw records by partition: {behind}"
        ) from None


def assert_exactly_once(events: list[RoutedEvent], sent: set[str]) -> None:
    repeated = [i for i, n in Counter(e.id for e in events).items() if n > 1]
    routed = {e.id for e in events}
    assert repeated == [], f"routed more than once: {repeated}"
    assert routed == sent, f"missing: {sorted(sent - routed)}; unexpected: {sorted(routed - sent)}"


async def assert_decided_once(settings: Settings, sent: Sent) -> None:
    """One `routed` decision per event sent, and one `duplicate` per resend of one."""
    decisions = await processor_decisions(settings)
    routed = Counter(d.event_id for d in decisions if d.outcome == "routed")
    duplicates = Counter(d.event_id for d in decisions if d.outcome == "duplicate")
    assert routed == Counter(sent.events)
    assert duplicates == Counter(sent.resent)


async def routed_events(settings: Settings) -> list[RoutedEvent]:
    records = await read_all(settings, ROUTED_EVENTS.name(settings.topics.prefix))
    return [ROUTED_EVENTS.decode(value) for _, value in records]


async def processor_decisions(settings: Settings) -> list[DeliveryLogRecord]:
    records = await read_all(settings, DELIVERY_LOG.name(settings.topics.prefix))
    entries = (DELIVERY_LOG.decode(value) for _, value in records)
    return [e for e in entries if e.stage == "processor"]


async def uncommitted_raw_events(settings: Settings) -> dict[int, int]:
    """Per raw-events partition, how many records the processors group has not committed."""
    return await uncommitted(settings, RAW_EVENTS.name(settings.topics.prefix), "processors")


async def raw_events_committed(settings: Settings) -> bool:
    """Whether the processors group has committed every raw event now on the topic."""
    return not await uncommitted_raw_events(settings)
