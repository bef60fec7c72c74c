"""A real HTTP target for dispatcher tests, and helpers that feed the dispatchers directly.

The target listens on 127.0.0.1, verifies every request's Standard Webhooks signature with the
`standardwebhooks` package, and behaves per path: `/ok`, `/slow` (random delay), `/hold`
(answers after 1.5 s), `/gate` (answers once the test opens `gate`), `/flaky` (fails a share
of requests with 503), `/fail-twice` (503 twice per event, then 200), `/busy` (429 with
Retry-After: 1 once per event), `/throttled` (always 429 with Retry-After: 2), `/gone` (410),
`/down` (always 503); any other path answers 204.

`publish_trigger` puts a trigger with its destinations on the trigger-config topic, and
`produce_routed` writes routed records as the processors do: one per destination, keyed by
correlation id, with the destination header.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from standardwebhooks import Webhook

from runtime.kafka import durable_producer
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.records import DeliveryLogRecord, RoutedEvent
from schemas.topics import DELIVERY_LOG, DESTINATION_HEADER, ROUTED_EVENTS, TRIGGER_CONFIG
from schemas.triggers import (
    DEFAULT_DESTINATION,
    Destination,
    RateLimit,
    Target,
    TargetKind,
    TriggerConfig,
)
from tests.integration.support.consumer_groups import uncommitted
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port, stage_env
from tests.integration.support.topic_reader import read_all

_rng = secrets.SystemRandom()
SIGNING_SECRET = "whsec_" + base64.b64encode(b"dispatch-test-signing-key-32byte").decode()


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    webhook_id: str
    subject: str
    seq: int
    body: bytes
    at: float
    # The `triggerline-replay-id` header of a replayed delivery.
    replay_id: str | None = None
    # The attempt's trace context, when the dispatcher traces.
    traceparent: str | None = None


@dataclass
class TargetServer:
    port: int
    received: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    flaky_share: float = 0.3
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    _calls: Counter[tuple[str, str]] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ids(self, path: str | None = None) -> set[str]:
        return {r.webhook_id for r in self.received if path is None or r.path == path}

    def calls(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            Webhook(SIGNING_SECRET).verify(body, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=401, text="bad signature")
        event = orjson.loads(body)
        received = Received(
            request.path,
            request.headers["webhook-id"],
            event["subject"],
            int(event["data"]["seq"]),
            body,
            time.monotonic(),
            request.headers.get("triggerline-replay-id"),
            request.headers.get("traceparent"),
        )
        self.received.append(received)
        self._calls[(request.path, received.webhook_id)] += 1
        calls = self._calls[(request.path, received.webhook_id)]
        status, headers = 204, {}
        match request.path:
            case "/slow":
                await asyncio.sleep(_rng.uniform(0, 0.03))
            case "/hold":
                await asyncio.sleep(1.5)
            case "/gate":
                await self.gate.wait()
            case "/flaky" if _rng.random() < self.flaky_share:
                await asyncio.sleep(_rng.uniform(0, 0.02))
                status = 503
            case "/fail-twice" if calls <= 2:
                status = 503
            case "/busy" if calls == 1:
                status, headers = 429, {"Retry-After": "1"}
            case "/throttled":
                status, headers = 429, {"Retry-After": "2"}
            case "/gone":
                status = 410
            case "/down":
                status = 503
        return web.Response(status=status, headers=headers)


async def requests_reach(server: TargetServer, count: int, path: str | None = None) -> None:
    """Wait until the target has received `count` requests (on `path`, if given)."""

    async def enough() -> bool | None:
        seen = server.calls(path) if path else server.received
        return True if len(seen) >= count else None

    await eventually(enough, 60)


@asynccontextmanager
async def target_server() -> AsyncIterator[TargetServer]:
    server = TargetServer(free_port())
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.port).start()
    try:
        yield server
    finally:
        await runner.cleanup()


async def publish_trigger(
    settings: Settings,
    *,
    kind: TargetKind = "http",
    ref: str = "",
    max_attempts: int = 8,
    max_age_s: float = 3600.0,
    timeout_s: float = 5.0,
    config: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    destinations: list[DestinationSpec] | None = None,
) -> TriggerConfig:
    """Put a trigger straight onto the trigger-config topic, as the outbox relay would.

    Its destinations are `destinations`, or else one named "default" with the target the other
    arguments describe; every one signs with SIGNING_SECRET. `secrets` are plaintext extras.
    """
    keyring = Keyring.from_setting(settings.secret_keys)
    specs = destinations or [
        DestinationSpec(
            DEFAULT_DESTINATION,
            Target(kind, ref, timeout_s=timeout_s, max_attempts=max_attempts, max_age_s=max_age_s),
        )
    ]
    trigger = TriggerConfig(
        trigger_id=str(uuid.uuid4()),
        project_id=str(uuid.uuid4()),
        definition="webhook",
        name=f"t-{uuid.uuid4().hex[:6]}",
        status="active",
        updated_at=datetime.now(UTC),
        revision=1,
        config=config or {},
        secrets={name: keyring.encrypt(value) for name, value in (secrets or {}).items()},
        destinations=tuple(
            Destination(
                spec.name,
                spec.target,
                rate_limit=spec.rate_limit,
                max_concurrency=spec.max_concurrency,
                signing_secret=keyring.encrypt(SIGNING_SECRET),
            )
            for spec in specs
        ),
    )
    producer = durable_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            TRIGGER_CONFIG.name(settings.topics.prefix),
            TRIGGER_CONFIG.encode(trigger),
            key=trigger.trigger_id.encode(),
        )
    finally:
        await producer.stop()
    return trigger


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    name: str
    target: Target
    rate_limit: RateLimit | None = None
    max_concurrency: int | None = None


def routed_event(
    trigger: TriggerConfig,
    subject: str,
    seq: int,
    ref: str,
    destination: str = DEFAULT_DESTINATION,
) -> RoutedEvent:
    """The record the processors would route to `destination` (whose target kind it takes),
    delivered to `ref`."""
    [kind] = [d.target.kind for d in trigger.destinations if d.name == destination]
    now = datetime.now(UTC)
    return RoutedEvent(
        id=f"ev-{uuid.uuid4().hex}",
        source="test",
        type="test.event",
        subject=subject,
        time=now,
        data={"seq": seq},
        triggerid=trigger.trigger_id,
        projectid=trigger.project_id,
        targetkind=kind,
        targetref=ref,
        receivedat=now,
        destination=destination,
    )


async def produce_routed(settings: Settings, events: list[RoutedEvent]) -> None:
    """Write routed records as the processors do: keyed by correlation id, with the destination
    header; in the order given, so that per partition offsets follow the list."""
    producer = durable_producer(settings)
    await producer.start()
    try:
        topic = ROUTED_EVENTS.name(settings.topics.prefix)
        sent = [
            await producer.send(
                topic,
                ROUTED_EVENTS.encode(e),
                key=e.subject.encode(),
                headers=[(DESTINATION_HEADER, e.destination.encode())],
            )
            for e in events
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def dispatcher_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **stage_env(settings),
        "TRIGGERLINE_DISPATCHER_ALLOW_PRIVATE_TARGETS": "true",
        "TRIGGERLINE_DISPATCHER_BACKOFF_BASE_S": "0.05",
        "TRIGGERLINE_DISPATCHER_BACKOFF_CAP_S": "0.5",
        "TRIGGERLINE_LOG_LEVEL": "WARNING",
        **extra,
    }


async def journeys(settings: Settings) -> dict[str, list[DeliveryLogRecord]]:
    """Delivery-log records by event id, in the order they were written."""
    by_event: dict[str, list[DeliveryLogRecord]] = {}
    for _, value in await read_all(settings, DELIVERY_LOG.name(settings.topics.prefix)):
        entry = DELIVERY_LOG.decode(value)
        by_event.setdefault(entry.event_id, []).append(entry)
    for entries in by_event.values():
        entries.sort(key=lambda e: e.at)
    return by_event


FINAL = ("delivered", "dead_lettered", "skipped")


def finished(journey: list[DeliveryLogRecord]) -> bool:
    return any(e.stage == "dispatcher" and e.outcome in FINAL for e in journey)


def start_dispatcher(settings: Settings, **extra: str) -> subprocess.Popen[bytes]:
    env = dispatcher_env(
        settings, **{"TRIGGERLINE_DISPATCHER_METRICS_PORT": str(free_port()), **extra}
    )
    return subprocess.Popen([sys.executable, "-m", "dispatchers"], env=env)


def stop_dispatcher(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


async def all_finished(settings: Settings, ids: set[str]) -> dict[str, list[DeliveryLogRecord]]:
    async def check() -> dict[str, list[DeliveryLogRecord]] | None:
        found = await journeys(settings)
        done = all(finished(found.get(event_id, [])) for event_id in ids)
        return found if done else None

    try:
        return await eventually(check, timeout_s=90, interval_s=1.0)
    except TimeoutError:
        found = await journeys(settings)
        open_ = {i: [(e.outcome, e.attempt) for e in found.get(i, [])] for i in ids}
        unfinished = {i: steps for i, steps in open_.items() if not finished(found.get(i, []))}
        raise AssertionError(f"{len(unfinished)} events unfinished: {unfinished}") from None


async def all_settled(settings: Settings, ids: set[str]) -> dict[str, list[DeliveryLogRecord]]:
    """The journeys once every event has finished and the dispatchers have committed the whole
    routed topic.

    After a crash, an event that was delivered but not committed is delivered again, and its
    repeat may still be retrying when the first final step is already on the log. Only a
    committed routed topic says that no delivery is still under way.
    """
    await all_finished(settings, ids)
    routed = ROUTED_EVENTS.name(settings.topics.prefix)

    async def committed() -> bool | None:
        behind = await uncommitted(settings, routed, "dispatchers")
        return None if behind else True

    try:
        await eventually(committed, timeout_s=90, interval_s=0.5)
    except TimeoutError:
        behind = await uncommitted(settings, routed, "dispatchers")
        raise AssertionError(f"routed records not committed, by partition: {behind}") from None
    return await journeys(settings)
