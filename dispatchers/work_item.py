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


@dataclass(slots=True)
class WorkItem:
    position: RecordPosition
    key: bytes | None
    value: bytes | None
    # Restored from the commit metadata when an earlier dispatcher already tried this record.
    retry: RetryState | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    # Read only when tracing is on: the trace context the processors wrote.
    headers: Sequence[tuple[str, bytes | None]] = ()


def history_entry(attempt: int, result: AttemptResult, latency_s: float) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "at": datetime.now(UTC).isoformat(),
        "outcome": result.outcome,
        "http_status": result.http_status,
        "error": result.error,
        "latency_ms": round(latency_s * 1000, 3),
    }
