"""A table of per-destination state (circuit breakers, rate limiters) with a bound and a retention.

Entries are made on first use. An entry a delivery holds is never forgotten, so every attempt
of that delivery works with the entry that admitted it; those are bounded by the records in
progress. Of the others, settled entries (whose loss costs nothing: a closed circuit, a limiter
not paused) unused for `idle_s` are forgotten; past `max_entries`, the least recently used
settled one goes. An unsettled entry is forgotten only when the bound leaves no settled one to
drop, the least recently used first: its destination then starts afresh (a closed circuit, a
full bucket), which the owner is told of through `forget` so that it can warn.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from itertools import chain, islice
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    last_used: float
    # Deliveries holding the entry (one per record between its first and last attempt).
    users: int = 0


class HeldTable(Generic[K, V]):
    def __init__(
        self,
        *,
        max_entries: int,
        idle_s: float,
        settled: Callable[[V], bool],
        forget: Callable[[K, V], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_entries = max_entries
        self._idle_s = idle_s
        self._settled = settled
        self._forget_value = forget
        self._clock = clock
        # In order of last use, least recent first.
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def hold(self, key: K, make: Callable[[], V]) -> contextlib.AbstractContextManager[V]:
        """The key's entry, made if absent, kept in the table for as long as the caller holds it."""
        return _Held(self, key, make)

    def _enter(self, key: K, make: Callable[[], V]) -> _Entry[V]:
        entry = self._entries.get(key)
        if entry is None:
            self._make_room()
            entry = self._entries[key] = _Entry(make(), self._clock())
        entry.users += 1
        self._touch(key, entry)
        return entry

    def _leave(self, key: K, entry: _Entry[V]) -> None:
        entry.users -= 1
        self._touch(key, entry)

    def _touch(self, key: K, entry: _Entry[V]) -> None:
        entry.last_used = self._clock()
        self._entries.move_to_end(key)

    def _make_room(self) -> None:
        """Forget idle settled entries, then enough others to leave room for one more."""
        idle_before = self._clock() - self._idle_s
        idle = []
        for key, entry in self._entries.items():
            if entry.last_used >= idle_before:
                break  # the rest were used later
            if entry.users == 0 and self._settled(entry.value):
                idle.append(key)
        for key in idle:
            self._forget(key)
        excess = len(self._entries) + 1 - self._max_entries
        if excess <= 0:
            return
        entries = self._entries.items()
        # Least recently used first within each kind; those held by a delivery never.
        by_preference = chain(
            (k for k, e in entries if e.users == 0 and self._settled(e.value)),
            (k for k, e in entries if e.users == 0 and not self._settled(e.value)),
        )
        for key in list(islice(by_preference, excess)):
            self._forget(key)

    def _forget(self, key: K) -> None:
        entry = self._entries.pop(key)
        self._forget_value(key, entry.value)


class _Held(Generic[K, V]):
    # A class rather than a generator: every delivery holds two entries (its circuit and its
    # limiter).
    __slots__ = ("_entry", "_key", "_make", "_table")

    def __init__(self, table: HeldTable[K, V], key: K, make: Callable[[], V]) -> None:
        self._table = table
        self._key = key
        self._make = make
        self._entry: _Entry[V] | None = None

    def __enter__(self) -> V:
        self._entry = self._table._enter(self._key, self._make)
        return self._entry.value

    def __exit__(self, *_: object) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            self._table._leave(self._key, entry)
