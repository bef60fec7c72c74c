"""Sender event ids this ingest process accepted lately, to count repeats as `duplicate`.

This is an observation, not the deduplication: a repeat is still stored and answered 2xx, and
the processors, which see every ingest process's events in one place, drop it. A bounded,
per-process memory can only ever miss repeats (another process took the first copy, or the id
aged out), never drop an event.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RecentIds:
    """At most `capacity` ids, each remembered for `retention_s`; oldest forgotten first."""

    __slots__ = ("_capacity", "_clock", "_ids", "_retention_s")

    def __init__(
        self, capacity: int, retention_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._capacity = capacity
        self._retention_s = retention_s
        self._clock = clock
        # (trigger id, sender event id) -> when it was last remembered; oldest first.
        self._ids: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        remembered = self._ids.get(key)
        return remembered is not None and self._clock() - remembered <= self._retention_s

    def __len__(self) -> int:
        return len(self._ids)

    def remember(self, key: tuple[str, str]) -> None:
        """Record an accepted (trigger id, sender event id), and forget what is past its time."""
        now = self._clock()
        self._ids[key] = now
        self._ids.move_to_end(key)
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        expired_before = now - self._retention_s
        while self._ids and next(iter(self._ids.values())) < expired_before:
            self._ids.popitem(last=False)
