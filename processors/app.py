"""The faust-streaming app: raw events in, routed events and decisions out, exactly once.

With `processing_guarantee="exactly_once"` the routed record, the delivery-log record and the
consumed offset commit in one Kafka transaction, so a worker killed at any point produces
neither a duplicate nor a gap when it restarts.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from processors.handler import RawEventHandler
from processors.routing import RoutingTrigger, compile_routing_trigger
from runtime.config_view import TriggerConfigView
from runtime.ops_server import OpsServer
from runtime.settings import Settings
from schemas.topics import DEAD_LETTERS, DELIVERY_LOG, RAW_EVENTS, ROUTED_EVENTS

log = logging.getLogger("triggerline.processors")


def build_app(settings: Settings) -> faust.App:
    prefix = settings.topic_prefix
    datadir = settings.local_dir / "faust" / prefix
    # faust creates only the last path component itself.
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.group("processors"),
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        processing_guarantee="exactly_once",
        # Triggerline's tables are rebuilt from Kafka; no local database is needed.
        store="memory://",
        web_enabled=False,
        datadir=str(datadir),
        topic_replication_factor=settings.topic_replication_factor,
        # The transaction commit interval bounds how long a routed record stays invisible to
        # read_committed dispatchers: lower means less latency, higher means fewer commits.
        broker_commit_interval=settings.processor_commit_interval_s,
    )

    def topic(name: str) -> Any:
        return app.topic(name, key_serializer="raw", value_serializer="raw", internal=False)

    view: TriggerConfigView[RoutingTrigger] = TriggerConfigView(
        settings, "processor", compile_routing_trigger
    )
    handler = RawEventHandler(
        view,
        routed=topic(ROUTED_EVENTS.name(prefix)),
        delivery_log=topic(DELIVERY_LOG.name(prefix)),
        dead_letters=topic(DEAD_LETTERS.name(prefix)),
    )
    ops = OpsServer("127.0.0.1", settings.processor_metrics_port, lambda: {"config": view.ready})

    async def start_side_services() -> None:
        await view.start()
        await ops.start()

    app.task(start_side_services)

    @app.agent(topic(RAW_EVENTS.name(prefix)))
    async def process_raw_events(stream: Any) -> None:
        async for event in stream.events():
            # faust acks an event whose agent raised, which would silently lose it; so every
            # failure becomes a dead letter and the agent moves on.
            try:
                await handler.handle(event.message)
            except Exception as exc:
                log.exception("processing failed", extra={"error": str(exc)})
                await handler.dead_letter(event.message, "processing_error", repr(exc), None)

    return app
