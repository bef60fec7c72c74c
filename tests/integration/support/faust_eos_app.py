"""A minimal faust worker for the broker smoke test: copies records with exactly-once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import faust

app = faust.App(
    os.environ["SMOKE_APP_ID"],
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP_SERVERS']}",
    processing_guarantee="exactly_once",
    store="memory://",
    web_enabled=False,
    datadir=str(Path(os.environ["TRIGGERLINE_LOCAL_DIR"]) / "faust-smoke"),
    topic_replication_factor=1,
)
source = app.topic(os.environ["SMOKE_SOURCE"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["SMOKE_SINK"], key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def copy(stream: Any) -> None:
    async for event in stream.events():
        await sink.send(key=event.key, value=event.value + b":done")


if __name__ == "__main__":
    faust.Worker(
        app, loglevel="warning", quiet=True, redirect_stdouts=False
    ).execute_from_commandline()
