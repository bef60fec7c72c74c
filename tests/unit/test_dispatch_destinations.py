"""Destinations in the Deliverer and the compiled config: each destination's own policy, key,
circuit and limits; a 429 pauses its whole destination and no other; records of a destination
that is gone are skipped; replays take the first destination's policy without its limits."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from dispatchers.backoff import Backoff, RetryPolicy
from dispatchers.circuit import CircuitBreakers
from dispatchers.compiled import DestinationPolicy, DispatchTrigger, compile_dispatch_trigger
from dispatchers.targets import AttemptResult
from dispatchers.tracker import RetryState
from dispatchers.work_item import WorkItem
from runtime.secrets import Keyring, new_key_setting
from schemas.codec import RecordPosition
from schemas.records import RoutedEvent
from schemas.topics import ROUTED_EVENTS
from schemas.triggers import (
    REPLAY_DESTINATION,
    TARGET_SIGNING_ENTRY,
    Destination,
    RateLimit,
    Target,
    TriggerConfig,
)
from tests.unit.support.dispatch import (
    PREFIX,
    RecordingProducer,
    ScriptedTarget,
    deliverer,
    dispatch_trigger,
    policy,
    routed,
)

pytestmark = pytest.mark.unit

URL = "https://hooks.example.com/in"
DELIVERED = AttemptResult("delivered", 200)
UNAVAILABLE = AttemptResult("retryable", 503, "target answered 503")
WAIT_S = 5.0


def work_item(event: RoutedEvent, offset: int = 0) -> WorkItem:
    position = RecordPosition(f"{PREFIX}.routed-events", 0, offset)
    return WorkItem(position, event.subject.encode(), ROUTED_EVENTS.encode(event))


class NoSlot:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


def ignore(_: RetryState) -> None:
    return None


@dataclass
class TargetByEvent:
    """Answers each event's attempts from its own script and notes when each attempt began."""

    scripts: dict[str, list[AttemptResult]]
    attempts: dict[str, list[float]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def attempt(
        self, event: RoutedEvent, body: bytes, policy: DestinationPolicy
    ) -> AttemptResult:
        made = self.attempts.setdefault(event.id, [])
        made.append(time.monotonic())
        self.changed.set()
        return self.scripts[event.id][len(made) - 1]

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not done():
                self.changed.clear()
                await self.changed.wait()


class FixedBackoff(Backoff):
    """Every retry waits exactly `base_s` (no jitter), so that a test knows the due time."""

    def delay(self, attempt: int, rng: Callable[[], float] = lambda: 1.0) -> float:
        return self.base_s


async def test_each_destination_retries_under_its_own_policy_and_key() -> None:
    patient = policy("patient", max_attempts=3, signing_key=b"p" * 32)
    hasty = policy("hasty", max_attempts=1, signing_key=b"h" * 32)
    target = ScriptedTarget([UNAVAILABLE, UNAVAILABLE, DELIVERED, UNAVAILABLE])
    producer = RecordingProducer()
    delivering = deliverer(
        target=target, producer=producer, triggers=[dispatch_trigger(3, 60.0, patient, hasty)]
    )

    await delivering.deliver_record(
        work_item(routed("http", URL, destination="patient")), NoSlot(), ignore
    )
    await delivering.deliver_record(
        work_item(routed("http", URL, event_id="ev-2", destination="hasty")), NoSlot(), ignore
    )

    assert [p.signing_key for p in target.policies] == [b"p" * 32] * 3 + [b"h" * 32]
    entries = producer.delivery_log()
    assert [(e.destination, e.outcome, e.attempt) for e in entries] == [
        ("patient", "retrying", 1),
        ("patient", "retrying", 2),
        ("patient", "delivered", 3),
        ("hasty", "failed", 1),
        ("hasty", "dead_lettered", 1),
    ]
    assert entries[-1].reason == "gave up after 1 attempts"


async def test_a_record_of_a_destination_that_is_gone_is_skipped() -> None:
    target = ScriptedTarget([])
    producer = RecordingProducer()

    finished = await deliverer(
        target=target, producer=producer, triggers=[dispatch_trigger()]
    ).deliver_record(work_item(routed("http", URL, destination="removed")), NoSlot(), ignore)

    assert finished
    assert target.attempts == []
    assert producer.steps() == [("skipped", 0, "destination removed no longer exists")]
    assert producer.delivery_log()[0].destination == "removed"
    assert producer.dead_letters() == []


async def test_a_replay_takes_the_first_destinations_policy_without_its_limits() -> None:
    first = policy(
        "first",
        max_attempts=2,
        signing_key=b"f" * 32,
        rate_limit=RateLimit(per_second=0.001, burst=1),
        max_concurrency=1,
    )
    target = ScriptedTarget([DELIVERED] * 3)
    producer = RecordingProducer()
    trigger = DispatchTrigger("t-1", "p-1", {"first": first, "default": policy()})
    delivering = deliverer(target=target, producer=producer, triggers=[trigger])

    # Three in a row: under "first"'s own limit of one per 1,000 s, the second would wait.
    for n in range(3):
        event = routed("http", URL, event_id=f"ev-{n}", destination=REPLAY_DESTINATION)
        async with asyncio.timeout(WAIT_S):
            assert await delivering.deliver_record(work_item(event, n), NoSlot(), ignore)

    [used, *_] = target.policies
    assert (used.retry, used.signing_key, used.timeout_s) == (first.retry, b"f" * 32, 5.0)
    assert (used.rate_limit, used.max_concurrency) == (None, None)
    assert {e.destination for e in producer.delivery_log()} == {REPLAY_DESTINATION}


async def test_an_open_circuit_holds_only_its_own_destination() -> None:
    breakers = CircuitBreakers(1, 3600.0, max_destinations=10, idle_s=60.0)
    with breakers.hold("http", "t-1", "broken") as breaker:
        await breaker.record(False)
    target = ScriptedTarget([DELIVERED])
    producer = RecordingProducer()
    stopping = asyncio.Event()
    delivering = deliverer(
        target=target,
        producer=producer,
        triggers=[dispatch_trigger(3, 60.0, policy("broken"), policy("fine"))],
        breakers=breakers,
        stopping=stopping,
    )
    held = asyncio.create_task(
        delivering.deliver_record(
            work_item(routed("http", URL, destination="broken")), NoSlot(), ignore
        )
    )

    # The same trigger and the same endpoint, another destination: delivered meanwhile.
    fine = routed("http", URL, event_id="ev-2", destination="fine")
    assert await delivering.deliver_record(work_item(fine, 1), NoSlot(), ignore)
    stopping.set()

    assert await asyncio.wait_for(held, WAIT_S) is False
    assert [e.destination for e in target.attempts] == ["fine"]


async def test_a_429_with_retry_after_pauses_its_whole_destination_and_no_other() -> None:
    busy = AttemptResult("retryable", 429, "target answered 429", retry_after_s=0.4)
    target = TargetByEvent({"a": [busy, DELIVERED], "b": [DELIVERED], "c": [DELIVERED]})
    delivering = deliverer(
        target=target,
        producer=RecordingProducer(),
        triggers=[dispatch_trigger(3, 60.0, policy("d"), policy("other"))],
    )
    # Records of different correlation ids, so that each has a lane of its own.
    a = routed("http", URL, event_id="a", destination="d", subject="conv-a")
    b = routed("http", URL, event_id="b", destination="d", subject="conv-b")
    c = routed("http", URL, event_id="c", destination="other", subject="conv-c")

    first = asyncio.create_task(delivering.deliver_record(work_item(a), NoSlot(), ignore))
    await target.until(lambda: "a" in target.attempts)
    others = [
        asyncio.create_task(delivering.deliver_record(work_item(e, n), NoSlot(), ignore))
        for n, e in enumerate((b, c), start=1)
    ]
    await asyncio.wait_for(asyncio.gather(first, *others), WAIT_S)

    answered = target.attempts["a"][0]
    # b waited out the pause its neighbour was told of, without an attempt in between.
    assert target.attempts["b"][0] - answered >= 0.38
    assert len(target.attempts["b"]) == 1
    assert target.attempts["c"][0] - answered < 0.2


async def test_a_429_without_retry_after_pauses_the_destination_until_the_records_retry() -> None:
    busy = AttemptResult("retryable", 429, "target answered 429")
    target = TargetByEvent({"a": [busy, DELIVERED], "b": [DELIVERED]})
    delivering = deliverer(
        target=target,
        producer=RecordingProducer(),
        triggers=[dispatch_trigger()],
        backoff=FixedBackoff(base_s=0.3, cap_s=0.3),
    )
    a = routed("http", URL, event_id="a", subject="conv-a")
    b = routed("http", URL, event_id="b", subject="conv-b")

    first = asyncio.create_task(delivering.deliver_record(work_item(a), NoSlot(), ignore))
    await target.until(lambda: "a" in target.attempts)
    second = asyncio.create_task(delivering.deliver_record(work_item(b, 1), NoSlot(), ignore))
    await asyncio.wait_for(asyncio.gather(first, second), WAIT_S)

    assert target.attempts["b"][0] - target.attempts["a"][0] >= 0.28


async def test_a_rate_limited_record_waits_without_spending_an_attempt() -> None:
    limited = policy("limited", rate_limit=RateLimit(per_second=10.0, burst=1))
    target = ScriptedTarget([DELIVERED] * 3)
    producer = RecordingProducer()
    delivering = deliverer(
        target=target, producer=producer, triggers=[dispatch_trigger(3, 60.0, limited)]
    )
    for n in range(3):
        event = routed("http", URL, event_id=f"ev-{n}", destination="limited")
        await delivering.deliver_record(work_item(event, n), NoSlot(), ignore)

    gaps = [later - earlier for earlier, later in itertools.pairwise(target.times)]
    assert all(gap >= 0.09 for gap in gaps), gaps
    assert producer.steps() == [("delivered", 1, None)] * 3


def test_a_trigger_compiles_to_a_policy_per_destination() -> None:
    keyring = Keyring.from_setting(SecretStr(new_key_setting()))
    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    config = trigger_config(
        destinations=(
            Destination(
                "alerts",
                Target("http", URL, timeout_s=2.0, max_attempts=4, max_age_s=90.0),
                rate_limit=RateLimit(per_second=5.0, burst=10),
                max_concurrency=3,
                signing_secret=keyring.encrypt(secret),
            ),
            Destination("audit", Target("noop")),
        )
    )

    compiled = compile_dispatch_trigger(config, keyring)

    alerts = compiled.policy("alerts")
    assert alerts == DestinationPolicy(
        "alerts", 2.0, RetryPolicy(4, 90.0), b"s" * 32, RateLimit(5.0, 10), 3
    )
    assert compiled.policy("audit") == DestinationPolicy(
        "audit", 10.0, RetryPolicy(8, 24 * 3600.0), None
    )
    assert compiled.policy("removed") is None
    replay = compiled.policy(REPLAY_DESTINATION)
    assert replay == DestinationPolicy(REPLAY_DESTINATION, 2.0, RetryPolicy(4, 90.0), b"s" * 32)


def test_a_v1_trigger_compiles_to_its_default_destination_with_its_signing_secret() -> None:
    keyring = Keyring.from_setting(SecretStr(new_key_setting()))
    secret = "whsec_" + base64.b64encode(b"v" * 32).decode()
    config = trigger_config(
        target=Target("http", URL, max_attempts=2),
        secrets={TARGET_SIGNING_ENTRY: keyring.encrypt(secret)},
    )

    default = compile_dispatch_trigger(config, keyring).policy("default")

    assert default is not None
    assert (default.signing_key, default.retry.max_attempts) == (b"v" * 32, 2)


@pytest.mark.parametrize(
    ("rate_limit", "max_concurrency"),
    [(RateLimit(per_second=0.0), None), (RateLimit(5.0, burst=0), None), (None, 0)],
)
def test_a_nonsensical_limit_makes_the_trigger_unusable_rather_than_unlimited(
    rate_limit: RateLimit | None, max_concurrency: int | None
) -> None:
    keyring = Keyring.from_setting(SecretStr(new_key_setting()))
    config = trigger_config(
        destinations=(
            Destination(
                "odd", Target("noop"), rate_limit=rate_limit, max_concurrency=max_concurrency
            ),
        )
    )
    with pytest.raises(ValueError, match="destination odd"):
        compile_dispatch_trigger(config, keyring)


def trigger_config(
    *,
    destinations: tuple[Destination, ...] = (),
    target: Target | None = None,
    secrets: dict[str, str] | None = None,
) -> TriggerConfig:
    """A trigger with `destinations`, or (as schema v1 had it) one `target`."""
    return TriggerConfig(
        trigger_id="t-1",
        project_id="p-1",
        definition="webhook",
        name="t",
        status="active",
        updated_at=datetime.now(UTC),
        revision=1,
        destinations=destinations,
        target=target,
        secrets=secrets or {},
    )
