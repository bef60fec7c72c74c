"""`python -m ingest.cron`: run a cron producer on its own (ingest also hosts one)."""

from __future__ import annotations

import asyncio

from ingest.cron.producer import CronProducer
from runtime.logging import configure_logging
from runtime.ops_server import OpsServer
from runtime.settings import Settings, get_settings


async def serve(settings: Settings) -> None:
    producer = CronProducer(settings)
    ops = OpsServer(
        settings.ops_host,
        settings.cron.metrics_port,
        lambda: {"trigger_config": producer.view.ready},
    )
    await ops.start()
    try:
        await producer.run()
    finally:
        await ops.stop()


def main() -> None:
    settings = get_settings()
    configure_logging("cron", settings)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
