"""Sender event ids this ingest process accepted lately, to count repeats as `duplicate`.

This is an observation, not the deduplication: a repeat is still stored and answered 2xx, and
the processors, which see every ingest process's events in one place, drop it. A bounded,
per-process memory can only ever miss repeats (another process took the first copy, or the id
aged out), never drop an event.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_CAPACITY = 50_000


class RecentIds:
    __slots__ = ("_capacity", "_ids")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._ids

    def remember(self, key: tuple[str, str]) -> None:
        """Record an accepted (trigger id, sender event id); the oldest entry goes when full."""
        self._ids[key] = None
        self._ids.move_to_end(key)
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
