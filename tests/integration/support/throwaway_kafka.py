"""A Kafka broker of a test's own, for fault tests that stop and restart it.

The shared local broker serves every other test and must never be stopped; this one runs from
the same jars on free ports, with a fresh data directory (formatting records the controller
port, so storage cannot be reused by a broker on other ports).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from deploy import local_kafka
from runtime.settings import Settings
from tests.integration.support.stages import free_port


@dataclass(frozen=True)
class ThrowawayBroker:
    local_dir: Path
    port: int
    controller_port: int

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def under(cls, directory: Path, shared: Settings) -> ThrowawayBroker:
        home = local_kafka.KafkaLayout.under(directory).home
        home.mkdir(parents=True)
        # The shared broker's jars, so no second download; the fetch marker inside says they
        # match the pom.
        (home / "libs").symlink_to(local_kafka.KafkaLayout.under(shared.local_dir).libs)
        return cls(directory, free_port(), free_port())

    async def start(self) -> None:
        # `start` blocks while it waits for the broker to answer.
        await asyncio.to_thread(
            local_kafka.start, self.local_dir, port=self.port, controller_port=self.controller_port
        )

    async def stop(self) -> None:
        await asyncio.to_thread(local_kafka.stop, self.local_dir)
