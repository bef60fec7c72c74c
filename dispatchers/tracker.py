"""Which offsets of one partition are finished, what may be committed, and retry state.

Records of different keys finish out of order. The committable offset is the lowest offset not
yet finished; the commit's metadata carries what a successor needs so that a restart neither
repeats work nor loses it: the finished offsets above the committed one (as ranges) and the
retry state (attempts made, first attempt time, next due time) of records waiting to retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import orjson

# Kafka's default offset.metadata.max.bytes is 4096; stay below it. What does not fit is
# dropped, which costs a repeated delivery (finished ranges) or a reset attempt count (retries).
METADATA_BUDGET = 3800
MAX_RANGES = 400


@dataclass(frozen=True, slots=True)
class RetryState:
    attempts: int
    first_attempt_at: float
    due_at: float


class PartitionTracker:
    def __init__(self, committed: int, metadata: str = "") -> None:
        # Offsets arrive in increasing order per partition, so this dict's insertion order is
        # offset order: the lowest unfinished offset is its first key, found in O(1).
        self._pending: dict[int, None] = {}
        # Highest offset seen + 1; the commit position when nothing is pending.
        self._end = committed
        self._done_above: list[int] = []
        self.retries: dict[int, RetryState] = {}
        self._restored_done: list[tuple[int, int]] = []
        self._restore(committed, metadata)
        self.dirty = False

    def __len__(self) -> int:
        return len(self._pending)

    def finished_before(self, offset: int) -> bool:
        """Whether a predecessor recorded `offset` as finished (a re-fetch after a restart)."""
        if not self._restored_done:
            return False  # the common case, asked for every record fetched
        return any(start <= offset <= end for start, end in self._restored_done)

    def add(self, offset: int) -> None:
        self._pending[offset] = None
        self._end = max(self._end, offset + 1)

    def finish(self, offset: int) -> None:
        self._pending.pop(offset, None)
        self.retries.pop(offset, None)
        self.dirty = True

    def set_retry(self, offset: int, state: RetryState) -> None:
        self.retries[offset] = state
        self.dirty = True

    def commit_point(self) -> tuple[int, str]:
        """(offset to commit, metadata) reflecting everything finished so far."""
        self.dirty = False
        low = next(iter(self._pending)) if self._pending else self._end
        if not self._pending:
            return low, ""
        # Finished offsets above the lowest pending one are the gaps between pending offsets.
        # Only the first gaps fit in the metadata anyway, so only the first offsets are read.
        pending = list(islice(self._pending, MAX_RANGES))
        upper = [*pending[1:], self._end if len(pending) == len(self._pending) else pending[-1]]
        done = [[a + 1, b - 1] for a, b in zip(pending, upper, strict=True)]
        done = [pair for pair in done if pair[0] <= pair[1]]
        retries = {
            str(offset): [s.attempts, round(s.first_attempt_at, 3), round(s.due_at, 3)]
            for offset, s in sorted(self.retries.items())
        }
        return low, _fit(done, retries)

    def _restore(self, committed: int, metadata: str) -> None:
        if not metadata:
            return
        try:
            state = orjson.loads(metadata)
            for start, end in state.get("d", []):
                self._restored_done.append((int(start), int(end)))
            for offset, (attempts, first, due) in state.get("r", {}).items():
                self.retries[int(offset)] = RetryState(int(attempts), float(first), float(due))
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            # Metadata written by something else: start from the committed offset alone.
            self._restored_done.clear()
            self.retries.clear()


def _fit(done: list[list[int]], retries: dict[str, list[float]]) -> str:
    encoded = orjson.dumps({"d": done, "r": retries})
    while len(encoded) > METADATA_BUDGET and (done or retries):
        if done:
            done.pop()
        else:
            retries.pop(next(reversed(retries)))
        encoded = orjson.dumps({"d": done, "r": retries})
    return encoded.decode()
