"""Routed events, single http attempts, and in-memory fakes at the dispatcher's seams (the
trigger-config view, the delivery target, the Kafka producer) for unit tests without Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dispatchers.backoff import Backoff, RetryPolicy
from dispatchers.circuit import CircuitBreakers
from dispatchers.compiled import DestinationPolicy, DispatchTrigger
from dispatchers.delivery import AttemptTarget, Deliverer
from dispatchers.endpoints import EndpointSlots
from dispatchers.journal import Journal
from dispatchers.limits import DestinationLimits
from dispatchers.targets import AttemptResult, Targets
from runtime.kafka_targets import KafkaTargetPolicy
from runtime.settings import Settings
from runtime.tracing import Tracing
from schemas.records import DeadLetter, DeliveryLogRecord, RoutedEvent
from schemas.topics import DEAD_LETTERS, DELIVERY_LOG, ROUTED_EVENTS
from schemas.triggers import DEFAULT_DESTINATION, RateLimit, TargetKind

PREFIX = "unit"
TRIGGER_ID = "t-1"


def routed(
    kind: TargetKind,
    ref: str,
    *,
    event_id: str = "ev-1",
    destination: str = DEFAULT_DESTINATION,
    subject: str = "conv-1",
) -> RoutedEvent:
    now = datetime.now(UTC)
    return RoutedEvent(
        id=event_id,
        source="test",
        type="test.event",
        subject=subject,
        time=now,
        data={},
        triggerid=TRIGGER_ID,
        projectid="p-1",
        targetkind=kind,
        targetref=ref,
        receivedat=now,
        destination=destination,
    )


def policy(
    name: str = DEFAULT_DESTINATION,
    *,
    max_attempts: int = 3,
    max_age_s: float = 60.0,
    rate_limit: RateLimit | None = None,
    max_concurrency: int | None = None,
    signing_key: bytes | None = b"k" * 32,
) -> DestinationPolicy:
    return DestinationPolicy(
        name,
        5.0,
        RetryPolicy(max_attempts, max_age_s),
        signing_key,
        rate_limit=rate_limit,
        max_concurrency=max_concurrency,
    )


def dispatch_trigger(
    max_attempts: int = 3, max_age_s: float = 60.0, *more: DestinationPolicy
) -> DispatchTrigger:
    """A trigger whose destination "default" has this retry policy, and `more` destinations."""
    policies = (policy(max_attempts=max_attempts, max_age_s=max_age_s), *more)
    return DispatchTrigger(TRIGGER_ID, "p-1", {p.name: p for p in policies})


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
        return await targets.attempt(routed("http", ref), b"{}", policy())
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
    attempt's event, policy, the state of the destination's circuit when it was made, and
    when it was made (time.monotonic)."""

    results: list[AttemptResult]
    breakers: CircuitBreakers | None = None
    attempts: list[RoutedEvent] = field(default_factory=list)
    policies: list[DestinationPolicy] = field(default_factory=list)
    circuit_states: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    async def attempt(
        self, event: RoutedEvent, body: bytes, policy: DestinationPolicy
    ) -> AttemptResult:
        assert body == ROUTED_EVENTS.encode(event), "the body is the routed record unchanged"
        self.attempts.append(event)
        self.policies.append(policy)
        self.times.append(time.monotonic())
        if self.breakers is not None:
            with self.breakers.hold(event.targetkind, event.triggerid, event.destination) as b:
                self.circuit_states.append(b.state)
        return self.results[len(self.attempts) - 1]


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


class RecordingProducer:
    """Kafka's producer seam: every record is acknowledged at once and kept, in order."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        **_: object,
    ) -> None:
        self.sent.append(Sent(topic, key, value, headers))

    def delivery_log(self) -> list[DeliveryLogRecord]:
        return [DELIVERY_LOG.decode(s.value) for s in self.sent if s.topic.endswith("delivery-log")]

    def steps(self) -> list[tuple[str, int | None, str | None]]:
        """(outcome, attempt, reason) of each delivery-log record."""
        return [(entry.outcome, entry.attempt, entry.reason) for entry in self.delivery_log()]

    def dead_letters(self) -> list[DeadLetter]:
        return [DEAD_LETTERS.decode(s.value) for s in self.sent if s.topic.endswith("dead-letters")]


def deliverer(
    *,
    target: AttemptTarget,
    producer: RecordingProducer,
    triggers: Iterable[DispatchTrigger] | KnownTriggers = (),
    breakers: CircuitBreakers | None = None,
    limits: DestinationLimits | None = None,
    stopping: asyncio.Event | None = None,
    backoff: Backoff | None = None,
    tracing: Tracing | None = None,
) -> Deliverer:
    """A Deliverer over the fakes, retrying at once (no backoff, unless given) so that tests do
    not wait."""
    view = triggers if isinstance(triggers, KnownTriggers) else KnownTriggers(*triggers)
    if breakers is None:
        breakers = CircuitBreakers(5, 30.0, max_destinations=100, idle_s=60.0)
    return Deliverer(
        view=view,
        targets=target,
        journal=Journal(Settings().override(topics__prefix=PREFIX), producer, tracing),
        breakers=breakers,
        limits=limits or DestinationLimits(max_destinations=100, idle_s=60.0),
        endpoints=EndpointSlots(4),
        backoff=backoff or Backoff(base_s=0.0, cap_s=0.0),
        stopping=stopping or asyncio.Event(),
        tracing=tracing,
        group=f"{PREFIX}.dispatchers",
    )
