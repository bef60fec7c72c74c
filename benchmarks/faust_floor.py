"""faust's own cost, for comparison with the processors: `python -m benchmarks.faust_floor`.

A faust app built by the processors' own factory (`processors.faust_engine.app.faust_app`:
exactly-once, in-memory store, the same commit interval and producer linger) whose agent does
no work: it acknowledges each raw event. No faust-engine processor can run faster than this on
the same machine.
"""

from __future__ import annotations

from typing import Any

import faust

from processors.faust_engine.app import faust_app
from runtime.settings import Settings, get_settings
from schemas.topics import RAW_EVENTS

FLOOR_GROUP = "faust-floor"


def build_floor_app(settings: Settings) -> faust.App:
    datadir = settings.local_dir / "faust" / f"{settings.topics.prefix}-floor"
    app = faust_app(settings, settings.group(FLOOR_GROUP), datadir)
    raw = app.topic(
        RAW_EVENTS.name(settings.topics.prefix), key_serializer="raw", value_serializer="raw"
    )

    @app.agent(raw)
    async def acknowledge(stream: Any) -> None:
        async for event in stream.events():
            event.ack()

    return app


def main() -> None:
    worker = faust.Worker(
        build_floor_app(get_settings()), loglevel="warning", quiet=True, redirect_stdouts=False
    )
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
