"""The faust-streaming app: raw events in, routed events and decisions out, exactly once.

With `processing_guarantee="exactly_once"` the routed record, the delivery-log record, the
deduplication table's changelog and the consumed offset commit in one Kafka transaction, so a
worker killed at any point produces neither a duplicate nor a gap when it restarts.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from pathlib import Path
from typing import Any

import faust
from aiokafka.errors import IllegalOperation, KafkaError

from processors.commit_guard import CommitGuard
from processors.dedupe import WindowedSeenEvents
from processors.handler import RawEventHandler
from processors.outputs import Outputs, PlainOutputs, SourceTransactionOutputs
from processors.rules import RoutingTrigger, compile_routing_trigger
from processors.transport import ExactlyOnceTransport, stop_worker_now
from runtime.config_view import TriggerConfigView
from runtime.kafka import admin_client
from runtime.metrics import PROCESSOR_CONSUMER_LAG, PROCESSOR_EVENTS
from runtime.ops_server import OpsServer
from runtime.settings import Settings
from schemas.topics import MAX_RECORD_BYTES, RAW_EVENTS

log = logging.getLogger("triggerline.processors")

# How often the consumer-lag gauge is refreshed.
LAG_INTERVAL_S = 5.0
# Lets one event's outputs and its neighbours' share produce requests; every transaction commit
# flushes them anyway, so it adds at most this much latency.
PRODUCER_LINGER_S = 0.005


def faust_app(settings: Settings, app_id: str, datadir: Path) -> faust.App:
    """A faust app configured as the processors run it."""
    # faust creates only the last path component itself.
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        processing_guarantee="exactly_once" if settings.processor_exactly_once else "at_least_once",
        # Triggerline's tables are rebuilt from their changelogs; no local database is needed.
        store="memory://",
        web_enabled=False,
        datadir=str(datadir),
        topic_replication_factor=settings.topic_replication_factor,
        # The transaction commit interval bounds how long a routed record stays invisible to
        # read_committed dispatchers: lower means less latency, higher means fewer commits
        # (see README, "Performance").
        broker_commit_interval=settings.processor_commit_interval_s,
        broker_session_timeout=settings.processor_session_timeout_s,
        # Routed events carry the webhook body; faust's default cap (1 MB) is below ours.
        producer_max_request_size=MAX_RECORD_BYTES,
        producer_linger=PRODUCER_LINGER_S,
    )
    # faust's own consumer and producer need two corrections for exactly-once (transport.py).
    app.transport = ExactlyOnceTransport(app.conf.broker_consumer, app)
    return app


def app_outputs(app: faust.App, settings: Settings) -> Outputs:
    if settings.processor_exactly_once:
        return SourceTransactionOutputs(app)
    return PlainOutputs(app)


def build_app(settings: Settings) -> faust.App:
    prefix = settings.topic_prefix
    app = faust_app(settings, settings.group("processors"), settings.local_dir / "faust" / prefix)

    raw_topic = RAW_EVENTS.name(prefix)
    view: TriggerConfigView[RoutingTrigger] = TriggerConfigView(
        settings, "processor", partial(compile_routing_trigger, engine=settings.cel_engine)
    )
    seen = WindowedSeenEvents(app, settings.processor_dedupe_window_s, RAW_EVENTS.partitions)
    handler = RawEventHandler(view, seen, app_outputs(app, settings), prefix)
    ops = OpsServer("127.0.0.1", settings.processor_metrics_port, lambda: {"config": view.ready})

    guard = CommitGuard()

    async def start_side_services() -> None:
        if settings.processor_exactly_once:
            guard.install(app)
        await view.start()
        await ops.start()

    app.task(start_side_services)

    async def report_consumer_lag() -> None:
        # The group's committed offsets, as an operator's lag tool reads them, for the raw
        # partitions this worker owns (so that summing over workers counts each partition once).
        admin = admin_client(settings)
        await admin.start()
        try:
            while True:
                await asyncio.sleep(LAG_INTERVAL_S)
                await _report_lag(app, admin, settings.group("processors"), raw_topic)
        finally:
            await admin.close()

    app.task(report_consumer_lag)

    @app.agent(app.topic(raw_topic, key_serializer="raw", value_serializer="raw"))
    async def process_raw_events(stream: Any) -> None:
        async for event in stream.events():
            # Handled and acknowledged as one step with respect to commits (CommitGuard).
            async with guard.lock:
                await handle_one(event.message)
                event.ack()

    async def handle_one(message: Any) -> None:
        # faust acks an event whose agent raised, which would silently lose it; so every
        # failure becomes a dead letter and the agent moves on.
        try:
            await handler.handle(message)
        except (KafkaError, IllegalOperation) as exc:
            # A send failed inside the transaction (or faust let it end underneath): the
            # event must be read again after a restart, not dead-lettered.
            stop_worker_now(exc)
        except Exception as exc:
            log.exception("processing failed", extra={"error": str(exc)})
            PROCESSOR_EVENTS.labels("unknown", "dead_lettered").inc()
            await handler.dead_letter(message, "processing_error", repr(exc), None)

    return app


async def _report_lag(app: faust.App, admin: Any, group: str, raw_topic: str) -> None:
    owned = [tp for tp in app.consumer.assignment() if tp.topic == raw_topic]
    if not owned:
        return
    try:
        committed = await admin.list_consumer_group_offsets(group)
    except Exception as exc:
        log.warning("consumer lag not measured", extra={"error": str(exc)})
        return
    # Partitions this worker no longer owns must not keep reporting their old lag.
    PROCESSOR_CONSUMER_LAG.clear()
    for tp in owned:
        offset = committed.get(tp)
        if offset is not None and offset.offset >= 0:
            lag = max(0, app.consumer.highwater(tp) - offset.offset)
            PROCESSOR_CONSUMER_LAG.labels(str(tp.partition)).set(lag)
