"""faust's own cost, for comparison with the processors: `python -m benchmarks.faust_floor`.

A faust app configured like the processors (exactly-once, in-memory store, the same commit
interval and producer linger) whose agent does no work: it acknowledges each raw
event, and with FAUST_FLOOR_PRODUCE=1 also re-serializes it and produces it to the routed topic
in the source partition's transaction, which is the plain aiokafka loop's work done the faust
way. No processor can run faster than this on the same machine.
"""

from __future__ import annotations

import os
from typing import Any

import faust
import orjson

from processors.app import PRODUCER_LINGER_S
from processors.outputs import PlainOutputs, SourceTransactionOutputs
from runtime.settings import Settings, get_settings
from schemas.topics import RAW_EVENTS, ROUTED_EVENTS

FLOOR_GROUP = "faust-floor"


def build_floor_app(settings: Settings, produce: bool) -> faust.App:
    app = faust.App(
        settings.group(FLOOR_GROUP),
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        processing_guarantee="exactly_once" if settings.processor_exactly_once else "at_least_once",
        store="memory://",
        web_enabled=False,
        datadir=str(settings.local_dir / "faust" / f"{settings.topic_prefix}-floor"),
        broker_commit_interval=settings.processor_commit_interval_s,
        producer_linger=PRODUCER_LINGER_S,
    )
    outputs = (
        SourceTransactionOutputs(app) if settings.processor_exactly_once else PlainOutputs(app)
    )
    routed = ROUTED_EVENTS.name(settings.topic_prefix)
    raw = app.topic(
        RAW_EVENTS.name(settings.topic_prefix), key_serializer="raw", value_serializer="raw"
    )

    @app.agent(raw)
    async def acknowledge(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            if produce:
                value = orjson.dumps(orjson.loads(message.value))
                await outputs.send(routed, message.key, value, message)
            event.ack()

    return app


def main() -> None:
    settings = get_settings()
    (settings.local_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = build_floor_app(settings, produce=os.environ.get("FAUST_FLOOR_PRODUCE") == "1")
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
