"""`triggerline run`: every stage as its own process, supervised in the foreground.

Stages run as separate processes, as they would in production, and never import each other.
Once the pipeline is ready, a stage that exits on its own is restarted, as a service manager
would: a processor worker stops on purpose when its Kafka transaction is lost, and every stage
resumes from its committed offsets. Ctrl-C (or SIGTERM) stops them gracefully, then force-stops
any that overrun the deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

# `dispatchers.sink` copies the delivery log into PostgreSQL for the control-plane API;
# `ingest.cron` is the cron producer (ingest's own is switched off by `triggerline run`).
STAGES = ("ingest", "processors", "dispatchers", "dispatchers.sink", "ingest.cron")
GRACEFUL_STOP_S = 15.0
# Restart pauses double from the first to the last while a stage keeps exiting; one that ran
# for STABLE_AFTER_S counts as recovered and is next restarted after the first pause again.
FIRST_RESTART_PAUSE_S = 1.0
LAST_RESTART_PAUSE_S = 30.0
STABLE_AFTER_S = 60.0


@dataclass
class StageProcess:
    name: str
    process: subprocess.Popen[bytes]
    started_at: float
    # Exits since the stage last ran for STABLE_AFTER_S.
    exits_in_a_row: int = 0
    restart_at: float | None = None


def restart_pause(exits_in_a_row: int) -> float:
    return min(LAST_RESTART_PAUSE_S, FIRST_RESTART_PAUSE_S * 2.0 ** max(0, exits_in_a_row - 1))


class Pipeline:
    def __init__(self, env: Mapping[str, str], stages: tuple[str, ...] = STAGES) -> None:
        self._env = dict(env)
        self._names = stages
        self._stages: list[StageProcess] = []

    @property
    def stages(self) -> tuple[StageProcess, ...]:
        return tuple(self._stages)

    def start(self) -> None:
        self._stages = [self._launch(name) for name in self._names]

    def _launch(self, name: str) -> StageProcess:
        process = subprocess.Popen([sys.executable, "-m", name], env=self._env)
        return StageProcess(name, process, time.monotonic())

    def wait_ready(self, ingest_url: str, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._raise_if_exited()
            try:
                if httpx.get(f"{ingest_url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"ingest was not ready within {timeout_s:.0f} s")

    def wait(self) -> None:
        """Supervise the stages until the user interrupts."""
        while True:
            self.supervise(time.monotonic())
            time.sleep(0.5)

    def supervise(self, now: float) -> None:
        """Schedule a restart for each stage that exited, and restart those that are due."""
        for index, stage in enumerate(self._stages):
            if stage.restart_at is None:
                code = stage.process.poll()
                if code is None:
                    continue
                ran_s = now - stage.started_at
                stage.exits_in_a_row = stage.exits_in_a_row + 1 if ran_s < STABLE_AFTER_S else 1
                pause = restart_pause(stage.exits_in_a_row)
                stage.restart_at = now + pause
                print(
                    f"{stage.name} exited with code {code} after {ran_s:.0f} s; "
                    f"restarting it in {pause:.0f} s",
                    file=sys.stderr,
                )
            if stage.restart_at <= now:
                restarted = self._launch(stage.name)
                restarted.exits_in_a_row = stage.exits_in_a_row
                self._stages[index] = restarted

    def stop(self) -> None:
        for stage in self._stages:
            if stage.process.poll() is None:
                stage.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACEFUL_STOP_S
        for stage in self._stages:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                stage.process.wait(remaining)
            except subprocess.TimeoutExpired:
                # Exactly-once processing and commit-after-effect make a hard stop safe.
                print(f"{stage.name} did not stop in time; killing it", file=sys.stderr)
                stage.process.kill()
                stage.process.wait()

    def _raise_if_exited(self) -> None:
        for stage in self._stages:
            code = stage.process.poll()
            if code is not None:
                raise RuntimeError(f"stage {stage.name} exited with code {code}")


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}
