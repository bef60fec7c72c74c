"""When to try a failed delivery again, and when to stop trying.

Exponential backoff with full jitter (a uniform delay between zero and the exponential bound)
spreads the retries of many events that failed together, so a recovering target is not hit by
a synchronized wave. A target's `Retry-After` is honoured when it asks for longer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float = 1.0
    cap_s: float = 300.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The wait after failed attempt number `attempt` (1-based)."""
        bound: float = min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, 62))
        return bound * rng()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    max_age_s: float


def next_due(
    policy: RetryPolicy,
    backoff: Backoff,
    *,
    attempts: int,
    first_attempt_at: float,
    now: float,
    retry_after_s: float | None,
    rng: Callable[[], float] = random.random,
) -> tuple[float | None, str]:
    """The wall-clock time of the next attempt, or None and the reason to give up."""
    if attempts >= policy.max_attempts:
        return None, f"gave up after {attempts} attempts"
    wait = backoff.delay(attempts, rng)
    if retry_after_s is not None:
        wait = max(wait, retry_after_s)
    due = now + wait
    if due - first_attempt_at > policy.max_age_s:
        return None, f"gave up: the next attempt would exceed the max age of {policy.max_age_s:g} s"
    return due, "retrying"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
