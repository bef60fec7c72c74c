"""Routed events, single http attempts, and in-memory fakes at the dispatcher's seams (the
trigger-config view, the delivery target, the Kafka producer) for unit tests without Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dispatchers.backoff import Backoff, RetryPolicy
from dispatchers.circuit import CircuitBreakers
from dispatchers.compiled import DispatchTrigger
from dispatchers.delivery import Deliverer
from dispatchers.endpoints import EndpointSlots
from dispatchers.journal import Journal
from dispatchers.targets import AttemptResult, Targets, endpoint_of
from runtime.kafka_targets import KafkaTargetPolicy
from runtime.settings import Settings
from schemas.records import DeadLetter, DeliveryLogRecord, RoutedEvent
from schemas.topics import DEAD_LETTERS, DELIVERY_LOG, ROUTED_EVENTS
from schemas.triggers import TargetKind

PREFIX = "unit"
TRIGGER_ID = "t-1"


def routed(kind: TargetKind, ref: str, *, event_id: str = "ev-1") -> RoutedEvent:
    now = datetime.now(UTC)
    return RoutedEvent(
        id=event_id,
        source="test",
        type="test.event",
        subject="conv-1",
        time=now,
        data={},
        triggerid=TRIGGER_ID,
        projectid="p-1",
        targetkind=kind,
        targetref=ref,
        receivedat=now,
    )


def dispatch_trigger(max_attempts: int = 3, max_age_s: float = 60.0) -> DispatchTrigger:
    return DispatchTrigger(TRIGGER_ID, "p-1", 5.0, RetryPolicy(max_attempts, max_age_s), b"k" * 32)


async def attempt_http(ref: str, *, allow_private: bool) -> AttemptResult:
    """One signed http attempt at `ref`, through a Targets of its own."""
    targets = Targets(
        None,  # http deliveries do not produce to Kafka
        allow_private=allow_private,
        max_connections=1,
        kafka_topics=KafkaTargetPolicy("triggerline"),
    )
    await targets.start()
    try:
        return await targets.attempt(routed("http", ref), b"{}", dispatch_trigger())
    finally:
        await targets.close()


class KnownTriggers:
    """The trigger-config view's lookup seam, over triggers given up front."""

    def __init__(self, *triggers: DispatchTrigger) -> None:
        self._triggers = {trigger.trigger_id: trigger for trigger in triggers}
        self.unusable_reasons: dict[str, str] = {}

    async def lookup(self, trigger_id: str) -> DispatchTrigger | None:
        return self._triggers.get(trigger_id)

    def unusable(self, trigger_id: str) -> str | None:
        return self.unusable_reasons.get(trigger_id)


@dataclass
class ScriptedTarget:
    """A delivery target that answers attempts with `results`, in order, and remembers each
    attempt's event and the state of the endpoint's circuit when it was made."""

    results: list[AttemptResult]
    breakers: CircuitBreakers | None = None
    attempts: list[RoutedEvent] = field(default_factory=list)
    circuit_states: list[str] = field(default_factory=list)

    async def attempt(
        self, event: RoutedEvent, body: bytes, trigger: DispatchTrigger
    ) -> AttemptResult:
        assert body == ROUTED_EVENTS.encode(event), "the body is the routed record unchanged"
        self.attempts.append(event)
        if self.breakers is not None:
            with self.breakers.hold(event.targetkind, endpoint_of(event)) as breaker:
                self.circuit_states.append(breaker.state)
        return self.results[len(self.attempts) - 1]


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes | None
    value: bytes


class RecordingProducer:
    """Kafka's producer seam: every record is acknowledged at once and kept, in order."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes | None = None, **_: object
    ) -> None:
        self.sent.append(Sent(topic, key, value))

    def delivery_log(self) -> list[DeliveryLogRecord]:
        return [DELIVERY_LOG.decode(s.value) for s in self.sent if s.topic.endswith("delivery-log")]

    def steps(self) -> list[tuple[str, int | None, str | None]]:
        """(outcome, attempt, reason) of each delivery-log record."""
        return [(entry.outcome, entry.attempt, entry.reason) for entry in self.delivery_log()]

    def dead_letters(self) -> list[DeadLetter]:
        return [DEAD_LETTERS.decode(s.value) for s in self.sent if s.topic.endswith("dead-letters")]


def deliverer(
    *,
    target: ScriptedTarget,
    producer: RecordingProducer,
    triggers: Iterable[DispatchTrigger] | KnownTriggers = (),
    breakers: CircuitBreakers | None = None,
    stopping: asyncio.Event | None = None,
) -> Deliverer:
    """A Deliverer over the fakes, retrying at once (no backoff) so that tests do not wait."""
    view = triggers if isinstance(triggers, KnownTriggers) else KnownTriggers(*triggers)
    if breakers is None:
        breakers = CircuitBreakers(5, 30.0, max_endpoints=100, idle_s=60.0)
    return Deliverer(
        view=view,
        targets=target,
        journal=Journal(Settings().override(topics__prefix=PREFIX), producer),
        breakers=breakers,
        endpoints=EndpointSlots(4),
        backoff=Backoff(base_s=0.0, cap_s=0.0),
        stopping=stopping or asyncio.Event(),
    )
