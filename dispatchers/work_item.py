"""A routed record as the dispatcher works on it, and the history of its attempts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from dispatchers.targets import AttemptResult
from dispatchers.tracker import RetryState
from schemas.codec import RecordPosition

# Why a record was dead-lettered, as the dead-letter counter's bounded label; the letter itself
# carries the full reason.
DeadLetterCause = Literal["undecodable", "trigger_unusable", "rejected", "retries_exhausted"]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt, as this process made it. Kept as it came and written out only for a dead
    letter: most records are delivered at their first attempt and never need it."""

    attempt: int
    # Epoch seconds.
    at: float
    result: AttemptResult
    latency_s: float

    def entry(self) -> dict[str, Any]:
        """The attempt as a dead letter lists it."""
        return {
            "attempt": self.attempt,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "outcome": self.result.outcome,
            "http_status": self.result.http_status,
            "error": self.result.error,
            "latency_ms": round(self.latency_s * 1000, 3),
        }


@dataclass(slots=True)
class WorkItem:
    position: RecordPosition
    key: bytes | None
    value: bytes | None
    # Restored from the commit metadata when an earlier dispatcher already tried this record.
    retry: RetryState | None = None
    history: list[AttemptRecord] = field(default_factory=list)
    # Read only when tracing is on: the trace context the processors wrote.
    headers: Sequence[tuple[str, bytes | None]] = ()
