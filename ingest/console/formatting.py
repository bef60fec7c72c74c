"""Template filters the events, dead-letters, replays and ops pages share; `ingest.console.web`
registers `FILTERS` on the console's one template environment.

Times are shown in UTC whatever the database session's zone, as every record carries them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def when(moment: datetime | None, precise: bool = False) -> str:
    """`2026-03-01 12:00:00` in UTC (with milliseconds if `precise`); a dash for no time."""
    if moment is None:
        return "—"
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    text = utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    return text[:-3] if precise else text[:-7]


def iso(moment: datetime | None) -> str:
    """The machine-readable time of a `<time datetime=...>`."""
    return "" if moment is None else moment.astimezone(UTC).isoformat()


FILTERS: dict[str, Callable[..., Any]] = {"when": when, "iso": iso}
