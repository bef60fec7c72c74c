"""Faults that the exactly-once tests inject into a processor worker, at named points.

`TRIGGERLINE_PROCESSOR_FAULT=<point>:<n>` makes the n-th arrival at the point fail, in the way
a real failure there would: a killed process (SIGKILL, nothing runs after it) or a raised
exception (which the worker must turn into a stop, never into a skipped event). Several faults
are separated by commas. Production leaves the setting empty, and then `reach` does nothing.
"""

from __future__ import annotations

import os
import signal
from typing import Literal

FaultPoint = Literal[
    # The transaction's outputs are produced; its offsets and commit have not been sent.
    "before-commit",
    # Kafka committed the transaction; its deduplication marks are not in the local store yet.
    "after-commit",
    # Sending the consumed offsets to the transaction fails.
    "send-offsets",
    # The rebalance listener fails while taking on newly assigned partitions.
    "assigned",
]

_KILLS: frozenset[FaultPoint] = frozenset({"before-commit", "after-commit"})


class InjectedFault(RuntimeError):
    """Raised at a point where the test asked for a failure."""


class Faults:
    def __init__(self, spec: str) -> None:
        self._remaining: dict[str, int] = {}
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            point, _, nth = entry.partition(":")
            self._remaining[point] = int(nth or "1")

    def reach(self, point: FaultPoint) -> None:
        remaining = self._remaining.get(point)
        if remaining is None:
            return
        if remaining > 1:
            self._remaining[point] = remaining - 1
            return
        del self._remaining[point]
        if point in _KILLS:
            os.kill(os.getpid(), signal.SIGKILL)
        raise InjectedFault(f"injected fault at {point}")
