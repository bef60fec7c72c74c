"""faust's own cost, for comparison with the processors: `python -m benchmarks.faust_floor`.

A faust app built by the processors' own factory (`processors.faust_engine.app.faust_app`:
exactly-once, in-memory store, the same commit interval and producer linger) whose agent does no
work: it acknowledges each raw event, and with FAUST_FLOOR_PRODUCE=1 also re-serializes it and
produces it to the routed topic in the source partition's transaction, which is the plain
aiokafka loop's work done the faust way. No processor can run faster than this on the same machine.
"""

from __future__ import annotations

import os
from typing import Any

import faust
import orjson

from processors.faust_engine.app import faust_app
from processors.faust_engine.outputs import FaustRecord, OutputSender
from processors.outputs import Output
from runtime.settings import Settings, get_settings
from schemas.topics import RAW_EVENTS, ROUTED_EVENTS

FLOOR_GROUP = "faust-floor"


def build_floor_app(settings: Settings, produce: bool) -> faust.App:
    datadir = settings.local_dir / "faust" / f"{settings.topic_prefix}-floor"
    app = faust_app(settings, settings.group(FLOOR_GROUP), datadir)
    sender = OutputSender(app, settings.processor_exactly_once)
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
                await sender.send(Output(routed, message.key, value, []), FaustRecord.of(message))
            event.ack()

    return app


def main() -> None:
    settings = get_settings()
    app = build_floor_app(settings, produce=os.environ.get("FAUST_FLOOR_PRODUCE") == "1")
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
