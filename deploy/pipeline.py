"""`triggerline run`: every stage as its own process, supervised in the foreground.

Stages run as separate processes, as they would in production, and never import each other.
Ctrl-C (or SIGTERM) stops them gracefully, then force-stops any that overrun the deadline.
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

# `dispatchers.sink` copies the delivery log into PostgreSQL for the control-plane API.
STAGES = ("ingest", "processors", "dispatchers", "dispatchers.sink")
GRACEFUL_STOP_S = 15.0


@dataclass
class StageProcess:
    name: str
    process: subprocess.Popen[bytes]


class Pipeline:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._stages: list[StageProcess] = []

    def start(self) -> None:
        for name in STAGES:
            process = subprocess.Popen([sys.executable, "-m", name], env=self._env)
            self._stages.append(StageProcess(name, process))

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
        """Block until a stage exits on its own (a crash) or the user interrupts."""
        while True:
            self._raise_if_exited()
            time.sleep(0.5)

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
