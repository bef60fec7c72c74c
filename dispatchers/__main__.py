"""`python -m dispatchers`: run one member of the dispatchers consumer group."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from dispatchers.consumer import Dispatcher
from runtime.kafka import durable_producer, group_consumer
from runtime.logging import configure_logging
from runtime.ops_server import OpsServer
from runtime.settings import Settings, get_settings
from schemas.topics import ROUTED_EVENTS

log = logging.getLogger("triggerline.dispatchers")


async def serve(settings: Settings) -> None:
    consumer = group_consumer(
        settings, ROUTED_EVENTS.name(settings.topic_prefix), group=settings.group("dispatchers")
    )
    producer = durable_producer(settings)
    dispatcher = Dispatcher(settings, consumer, producer)
    started = {"consumer": False, "producer": False}
    ops = OpsServer("127.0.0.1", settings.dispatcher_metrics_port, lambda: dict(started))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Stop fetching, let the current batch finish and commit, then close.
        loop.add_signal_handler(signum, dispatcher.stop)
    await ops.start()
    await producer.start()
    started["producer"] = True
    await consumer.start()
    started["consumer"] = True
    try:
        await dispatcher.run()
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        await producer.stop()
        await ops.stop()
        log.info("stopped")


def main() -> None:
    settings = get_settings()
    configure_logging("dispatchers", settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
