"""Refused requests, counted one by one and logged a few lines at a time.

Forged signatures, slow requests and connection floods cost an attacker nothing to send, so a
line per request would let anyone fill the logs. Each (definition, reason) writes at most one
line per interval, saying how many more it left out since its last line; the counter has every
one. Definitions and reasons are closed sets, so the state is bounded without eviction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from runtime.metrics import INGEST_REFUSED

log = logging.getLogger("triggerline.ingest")


class RefusalLog:
    __slots__ = ("_clock", "_interval_s", "_keys")

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        # (definition, reason) -> [when its last line was written, refusals left out since].
        self._keys: dict[tuple[str, str], list[float]] = {}

    def refused(
        self, definition: str | None, reason: str, detail: str, **fields: str | None
    ) -> None:
        """Count a refusal and maybe log it; `definition` is None before a trigger is known."""
        INGEST_REFUSED.labels(reason).inc()
        now = self._clock()
        key = (definition or "", reason)
        state = self._keys.get(key)
        if state is not None and now - state[0] < self._interval_s:
            state[1] += 1
            return
        left_out = 0 if state is None else int(state[1])
        self._keys[key] = [now, 0]
        log.info(
            "request refused",
            extra={
                "definition": definition,
                "reason": reason,
                "detail": detail,
                "left_out_since_last_line": left_out,
                **fields,
            },
        )


# What uvicorn warns about once per request, and the reason each is counted under.
UVICORN_REFUSALS = {
    "Exceeded concurrency limit.": "over_connection_limit",
    "Invalid HTTP request received.": "invalid_http",
}


class UvicornRefusals(logging.Filter):
    """Routes uvicorn's per-request warnings (installed on `uvicorn.error`) through the
    refusal log: counted, and logged a few lines at a time."""

    def __init__(self, refusals: RefusalLog) -> None:
        super().__init__()
        self._refusals = refusals

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        reason = UVICORN_REFUSALS.get(message)
        if reason is None:
            return True
        self._refusals.refused(None, reason, message)
        return False
