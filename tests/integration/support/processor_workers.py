"""Processor workers as real processes, for exactly-once tests.

Every processor test runs on both engines unless it says otherwise: `ENGINES` is what the
tests are parametrized with, and a `WorkerGroup` starts workers of one engine.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from runtime.settings import Settings
from tests.integration.support.stages import free_port, stage_env

ENGINES = ("batch", "faust")

# For tests that kill, stop or stall workers: the group notices a worker is gone, and moves
# its partitions, once its session expires.
SHORT_SESSION = {"TRIGGERLINE_PROCESSOR_SESSION_TIMEOUT_S": "6"}


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    metrics_port: int
    # Set when the test stops the worker, so that supervision does not restart it.
    stopped: bool = False


class WorkerGroup:
    """Workers of one processors group on one engine, each with its own ops port; stopped on
    exit. `env` applies to every worker, `start(**env)` adds to it for one."""

    def __init__(self, settings: Settings, engine: str = "batch", **env: str) -> None:
        self._settings = settings
        self._env = {"TRIGGERLINE_PROCESSOR_ENGINE": engine, **env}
        self.workers: list[Worker] = []
        # Workers that exited on their own and were replaced by `supervise`, with their status.
        self.exits: list[int] = []
        self._stopping = False

    @property
    def restarts(self) -> int:
        return len(self.exits)

    def start(self, **env: str) -> Worker:
        port = free_port()
        environment = {
            **stage_env(self._settings),
            "TRIGGERLINE_PROCESSOR_METRICS_PORT": str(port),
            **self._env,
            **env,
        }
        process = subprocess.Popen([sys.executable, "-m", "processors"], env=environment)
        worker = Worker(process, port)
        self.workers.append(worker)
        return worker

    async def supervise(self, *restart_envs: dict[str, str]) -> None:
        """Restart each worker that exits on its own, as `triggerline run` does, until
        cancelled; the n-th restart adds `restart_envs[n]` (if given) to the environment."""
        while not self._stopping:
            for worker in list(self.workers):
                code = worker.process.poll()
                if not worker.stopped and code is not None:
                    self.workers.remove(worker)
                    extra = (
                        restart_envs[len(self.exits)] if len(self.exits) < len(restart_envs) else {}
                    )
                    self.exits.append(code)
                    self.start(**extra)
            await asyncio.sleep(0.2)

    async def stop_worker(self, worker: Worker, signum: int = signal.SIGTERM) -> int:
        """Signal one worker (SIGTERM by default) and wait for it to exit; its exit status."""
        worker.stopped = True
        worker.process.send_signal(signum)
        return await asyncio.to_thread(worker.process.wait, 60)

    def stop(self) -> None:
        self._stopping = True
        running = [w.process for w in self.workers if w.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def processor_workers(
    settings: Settings, count: int, engine: str = "batch", **env: str
) -> Iterator[WorkerGroup]:
    group = WorkerGroup(settings, engine, **env)
    try:
        for _ in range(count):
            group.start()
        yield group
    finally:
        group.stop()


def rss_mb(pid: int) -> float:
    """A process's resident memory, as the kernel reports it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for process {pid}")


def dedupe_store_dir(settings: Settings) -> Path:
    """Where a worker on this host keeps the deduplication stores of its raw partitions."""
    return settings.local_dir / "processors" / settings.topics.prefix / "dedupe"


async def metric(worker: Worker, name: str) -> float | None:
    """A label-less metric's value from the worker's /metrics (None while it does not answer)."""
    async with httpx.AsyncClient() as client:
        try:
            text = (await client.get(f"http://127.0.0.1:{worker.metrics_port}/metrics")).text
        except httpx.HTTPError:
            return None
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


async def owned_by(worker: Worker) -> set[str]:
    """The raw partitions a worker reports owning (none while its ops server is not up)."""
    async with httpx.AsyncClient() as client:
        try:
            text = (await client.get(f"http://127.0.0.1:{worker.metrics_port}/metrics")).text
        except httpx.HTTPError:
            return set()
    prefix = 'triggerline_processor_consumer_lag{partition="'
    return {
        line[len(prefix) :].split('"')[0] for line in text.splitlines() if line.startswith(prefix)
    }
