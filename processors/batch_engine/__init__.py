"""The batch engine: a plain aiokafka read-process-write loop with per-partition transactions."""

from __future__ import annotations

import uvloop

from processors.batch_engine.worker import BatchWorker
from runtime.logging import configure_logging
from runtime.settings import Settings


async def serve(settings: Settings) -> None:
    # aiokafka's clients must be built inside the running loop.
    await BatchWorker(settings).run()


def main(settings: Settings) -> None:
    configure_logging("processors", settings.log_level)
    uvloop.run(serve(settings))
