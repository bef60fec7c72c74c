"""The faust engine: the processors as a faust-streaming app, exactly once.

With `processing_guarantee="exactly_once"` the routed record, the delivery-log record, the
deduplication marks and the consumed offset commit in one Kafka transaction per raw partition,
so a worker killed at any point produces neither a duplicate nor a gap when it restarts. faust
is the reference engine: the batch engine (processors/batch_engine) is faster, and both share
the decision code, the transactional ids and the deduplication changelog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Set
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka.errors import IllegalOperation, KafkaError

from kinds.routing import RoutingTrigger
from processors.dedupe import DedupeStores
from processors.faults import Faults
from processors.faust_engine.commits import CommitGuard
from processors.faust_engine.outputs import FaustRecord, OutputSender
from processors.faust_engine.transport import ExactlyOnceTransport, TransactionGuardedProducer
from processors.handler import RawEventHandler
from processors.rules import routing_view
from processors.spans import ProcessorSpans
from processors.stop import stop_worker_now
from runtime.config_view import TriggerConfigView
from runtime.consumer_lag import LagGauge
from runtime.kafka import admin_client
from runtime.metrics import PROCESSOR_CONSUMER_LAG
from runtime.ops_server import OpsServer
from runtime.settings import Settings
from runtime.tracing import Tracing
from schemas.topics import MAX_RECORD_BYTES, PROCESSOR_DEDUPE, RAW_EVENTS

log = logging.getLogger("triggerline.processors")

# How often the consumer-lag gauge and the deduplication key count are refreshed.
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
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers.split(",")],
        processing_guarantee="exactly_once" if settings.processor.exactly_once else "at_least_once",
        # The processors keep no faust tables: deduplication has its own store and changelog.
        store="memory://",
        web_enabled=False,
        datadir=str(datadir),
        topic_replication_factor=settings.topics.replication_factor,
        # The transaction commit interval bounds how long a routed record stays invisible to
        # read_committed dispatchers: lower means less latency, higher means fewer commits.
        broker_commit_interval=settings.processor.commit_interval_s,
        broker_session_timeout=settings.processor.session_timeout_s,
        # Routed events carry the webhook body; faust's default cap (1 MB) is below ours.
        producer_max_request_size=MAX_RECORD_BYTES,
        producer_linger=PRODUCER_LINGER_S,
    )
    # faust's own consumer and producer need two corrections for exactly-once (transport.py).
    app.transport = ExactlyOnceTransport(app.conf.broker_consumer, app)
    return app


class FaustProcessors:
    """The processors' parts as one faust app uses them."""

    def __init__(self, app: faust.App, settings: Settings, tracing: Tracing | None) -> None:
        prefix = settings.topics.prefix
        self.group = settings.group("processors")
        self.raw_topic = RAW_EVENTS.name(prefix)
        changelog_topic = PROCESSOR_DEDUPE.name(prefix)
        self.faults = Faults(settings.processor.fault)
        self.view: TriggerConfigView[RoutingTrigger] = routing_view(settings)
        self.handler = RawEventHandler(
            self.view,
            prefix,
            max_correlation_id_bytes=settings.processor.max_correlation_id_bytes,
            spans=None if tracing is None else ProcessorSpans(tracing, settings),
            event_lines_per_s=settings.log_event_lines_per_s,
        )
        self.stores = DedupeStores(settings)
        self.sender = OutputSender(app, settings.processor.exactly_once)
        self.ops = OpsServer(
            settings.ops_host,
            settings.processor.metrics_port,
            lambda: {"config": self.view.ready},
            self.view.problems,
        )
        self.guard = CommitGuard(
            self.stores,
            self.raw_topic,
            changelog_topic,
            self.faults,
            settings.processor.exactly_once,
        )

    async def take_on(self, _: Any, /, *args: Any, signal: Any, **__: Any) -> None:
        """The `on_partitions_assigned` signal. A new partition's marks are restored when its
        first event arrives: faust has started its producer (the fence) by then, and heartbeats
        go on meanwhile, which they do not during this signal. faust crashes the app
        gracefully when a handler raises, which could commit; a failure here stops the worker
        instead."""
        assigned: Set[Any] = args[0]
        try:
            self.faults.reach("assigned")
            owned = {tp.partition for tp in assigned if tp.topic == self.raw_topic}
            async with self.guard.lock:
                for partition in self.stores.partitions():
                    if partition not in owned:
                        # Its producer was stopped: an uncommitted transaction is aborted,
                        # and its marks go with it.
                        self.stores.close(partition)
        except BaseException as exc:
            stop_worker_now(exc)

    async def handle(self, record: FaustRecord) -> None:
        marks = self.stores.get(record.partition) or await self.stores.restore(record.partition)
        outputs = await self.handler.handle(record, marks)
        try:
            for output in outputs:
                await self.sender.send(output, record)
        except (KafkaError, IllegalOperation) as exc:
            # A send failed inside the transaction (or faust let it end underneath): the
            # event must be read again after a restart, not dead-lettered.
            stop_worker_now(exc)


def build_app(settings: Settings, tracing: Tracing | None = None) -> faust.App:
    group = settings.group("processors")
    app = faust_app(settings, group, settings.local_dir / "faust" / settings.topics.prefix)
    parts = FaustProcessors(app, settings, tracing)
    producer = cast(TransactionGuardedProducer, app.producer)
    producer.faults = parts.faults
    producer.on_committed = parts.guard.transaction_committed

    async def start_side_services() -> None:
        parts.guard.install(app)
        await parts.view.start()
        await parts.ops.start()

    app.task(start_side_services)
    app.on_partitions_assigned.connect(parts.take_on)

    async def report() -> None:
        # The group's committed offsets, as an operator's lag tool reads them, for the raw
        # partitions this worker owns (so that summing over workers counts each partition once).
        admin = admin_client(settings)
        lag = LagGauge()
        await admin.start()
        try:
            while True:
                await asyncio.sleep(LAG_INTERVAL_S)
                await _report_lag(app, admin, group, parts.raw_topic, lag)
                parts.stores.report()
                parts.handler.flush_metrics()
        finally:
            await admin.close()

    app.task(report)

    @app.agent(app.topic(parts.raw_topic, key_serializer="raw", value_serializer="raw"))
    async def process_raw_events(stream: Any) -> None:
        async for event in stream.events():
            # Handled and acknowledged as one step with respect to commits (CommitGuard).
            async with parts.guard.lock:
                await parts.handle(FaustRecord.of(event.message))
                event.ack()

    return app


async def _report_lag(
    app: faust.App, admin: Any, group: str, raw_topic: str, gauge: LagGauge
) -> None:
    owned = [tp for tp in app.consumer.assignment() if tp.topic == raw_topic]
    if not owned:
        gauge.publish({})
        return
    try:
        committed = await admin.list_consumer_group_offsets(group)
    except Exception as exc:
        log.warning("consumer lag not measured", extra={"error": str(exc)})
        return
    # Partitions this worker no longer owns must not keep reporting their old lag.
    PROCESSOR_CONSUMER_LAG.clear()
    lags: dict[tuple[str, int], int] = {}
    for tp in owned:
        offset = committed.get(tp)
        if offset is not None and offset.offset >= 0:
            lag = max(0, app.consumer.highwater(tp) - offset.offset)
            PROCESSOR_CONSUMER_LAG.labels(str(tp.partition)).set(lag)
            lags[tp.topic, tp.partition] = lag
    gauge.publish(lags)
