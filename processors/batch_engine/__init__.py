"""The batch engine: a plain aiokafka read-process-write loop with per-partition transactions."""

from __future__ import annotations

import logging

import uvloop
from aiokafka.errors import InconsistentGroupProtocolError

from processors.batch_engine.worker import BatchWorker
from runtime.logging import configure_logging
from runtime.settings import Settings
from runtime.tracing import Tracing, tracing_from_env

log = logging.getLogger("triggerline.processors")


async def serve(settings: Settings, tracing: Tracing | None) -> None:
    # aiokafka's clients must be built inside the running loop.
    await BatchWorker(settings, tracing).run()


def main(settings: Settings) -> None:
    configure_logging("processors", settings)
    try:
        uvloop.run(serve(settings, tracing_from_env("processors")))
    except InconsistentGroupProtocolError:
        log.critical(
            "the processors group has workers of the other engine; stop all of them before "
            "starting workers on this one",
            extra={"group": settings.group("processors"), "engine": settings.processor.engine},
        )
        raise SystemExit(1) from None
