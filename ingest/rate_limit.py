"""Per-trigger inbound rate limits: a token bucket per trigger, answered with 429 + Retry-After.

A trigger's limit comes from its config (`"rate_limit": {"per_second": 20, "burst": 100}`),
falling back to the service default. The bucket belongs to the compiled trigger, so it lives
exactly as long as that config revision: a deleted trigger takes its bucket with it, and a
changed limit starts from a full bucket.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("triggerline.ingest")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`per_second` tokens flow in continuously; up to `burst` can be spent at once."""

    per_second: float
    burst: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any], default: RateLimit) -> RateLimit:
        """The trigger's own limit, or `default` where it sets none or sets nonsense.

        A bad value must not make the trigger unreachable (which a failed compile would), so
        it is logged and the default applies.
        """
        given = config.get("rate_limit")
        if given is None:
            return default
        if isinstance(given, Mapping):
            per_second = given.get("per_second", default.per_second)
            if _positive_number(per_second):
                # Without a burst, allow one second's worth at once (and at least one request).
                burst = given.get("burst", max(1.0, per_second))
                if _positive_number(burst) and burst >= 1:
                    return cls(float(per_second), float(burst))
        log.warning(
            "ignoring an invalid rate_limit; the default applies",
            extra={"rate_limit": str(given)[:200]},
        )
        return default


def _positive_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


class TokenBucket:
    """Not thread-safe, and need not be: ingest serves requests on one event loop."""

    __slots__ = ("_clock", "_limit", "_tokens", "_updated")

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._tokens = limit.burst
        self._updated = clock()

    @property
    def limit(self) -> RateLimit:
        return self._limit

    def take(self) -> float:
        """Spend one token. Returns 0.0 if there was one, else the seconds until there is."""
        now = self._clock()
        self._tokens = min(
            self._limit.burst, self._tokens + (now - self._updated) * self._limit.per_second
        )
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._limit.per_second


def retry_after_header(wait_s: float) -> str:
    """Retry-After takes whole seconds; rounding down would invite an immediate second 429."""
    return str(max(1, math.ceil(wait_s)))
