"""Logs of every service: JSON lines for machines, or one short line each for a person.

Stages set the ids once per event with `log_context(...)` (or pass them with `extra=`); every
log line written inside that block carries them, so one grep follows an event through all
stages. `TRIGGERLINE_LOG_FORMAT` picks the format: `json` (the default, for services run
directly or under a supervisor) or `human` (what `triggerline run` gives its stages).

Each stage writes one line per event outcome through an `OutcomeLog` (ingest: accepted or
refused; processors: routed, skipped, duplicate, dead-lettered...; dispatchers: delivered,
retrying, dead-lettered...), within a budget of lines per second (below).
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from runtime.settings import Settings

LogFormat = Literal["json", "human"]

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context")
_NO_CONTEXT: dict[str, str] = {}

# Attributes every LogRecord has; anything else passed through `extra=` is a structured field.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def log_context(**fields: str | None) -> AbstractContextManager[None]:
    """The ids in scope, with these added, for every log line written inside the block."""
    merged = {**_context.get(_NO_CONTEXT), **{k: v for k, v in fields.items() if v is not None}}
    return _LogContext(merged)


class _LogContext:
    # A class rather than a generator: the dispatchers enter one per record.
    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields
        self._token: contextvars.Token[dict[str, str]] | None = None

    def __enter__(self) -> None:
        self._token = _context.set(self._fields)

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            _context.reset(self._token)
            self._token = None


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ids in scope and the record's own structured fields."""
    fields: dict[str, Any] = dict(_context.get(_NO_CONTEXT))
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS:
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # Non-string keys (partition numbers, say) are written as strings rather than lost.
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


# The ids a person looks for first, by the short names the human format gives them.
_HUMAN_IDS = (
    ("trigger_id", "trigger"),
    ("event_id", "event"),
    ("correlation_id", "correlation"),
    ("destination", "destination"),
)
_HUMAN_VALUE_CHARS = 160


class HumanFormatter(logging.Formatter):
    """`12:03:04.512 processors   routed        trigger=… event=… destination=default`: the
    time (local), the stage, what happened, then the ids and the other fields."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        # The stage is in its column; uvicorn adds a coloured copy of its message.
        fields.pop("service", None)
        fields.pop("color_message", None)
        shown = [f"{name}={fields.pop(key)}" for key, name in _HUMAN_IDS if key in fields]
        shown += [f"{key}={_human_value(value)}" for key, value in fields.items()]
        level = "" if record.levelno <= logging.INFO else f"{record.levelname} "
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        stamp = f"{clock}.{int(record.msecs):03d}"
        line = f"{stamp} {self._service:<11} {level}{record.getMessage():<13} {' '.join(shown)}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line.rstrip()


def _human_value(value: object) -> str:
    text = (
        value
        if isinstance(value, str)
        else orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    )
    if len(text) > _HUMAN_VALUE_CHARS:
        text = text[: _HUMAN_VALUE_CHARS - 1] + "…"
    return orjson.dumps(text).decode() if any(c.isspace() for c in text) or not text else text


def logging_config(
    level: str = "INFO", log_format: LogFormat = "json", service: str = ""
) -> dict[str, Any]:
    """A `logging.config.dictConfig` mapping; faust's worker takes the same mapping."""
    formatter: dict[str, Any] = (
        {"()": HumanFormatter, "service": service}
        if log_format == "human"
        else {"()": JsonFormatter}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"chosen": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "chosen",
                "stream": sys.stderr,
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # Client libraries log every reconnect at INFO; warnings are what an operator needs.
        "loggers": {
            name: {"level": "WARNING"} for name in ("aiokafka", "faust", "mode", "uvicorn.access")
        },
    }


def configure_logging(service: str, settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format, service))
    logging.getLogger("triggerline").info("starting", extra={"service": service})


# How often the outcomes left out over the budget are summed up in one line.
SUMMARY_INTERVAL_S = 10.0


class OutcomeLog:
    """One line per event outcome at INFO, within a budget of lines per second per process.

    The processors decide some 15,000 events a second on two cores and the dispatchers deliver
    thousands; formatting and writing a line costs about ten microseconds, so a line for each
    would take a sixth of a core and flood whatever collects the logs. Events that a person
    watches (a few a second, a test webhook) all fit within the budget and each gets its line;
    past it, outcomes are only counted by name and summed up in one line per interval. Every
    event is still in the delivery log and the metrics. Checking the budget costs under a
    microsecond per event (a clock read and some arithmetic); at DEBUG every outcome gets its
    line, unbudgeted. The summary is written with the first outcome after its interval (the
    processors also flush it every few seconds).
    """

    def __init__(
        self,
        logger: logging.Logger,
        lines_per_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._rate = lines_per_s
        self._clock = clock
        # The budget as a generic cell rate: lines are spaced 1/rate apart on average, and up to
        # one second's worth may come at once. `_due` is when the budget would be spent again
        # if no more lines came; a line that would push it over a second ahead is left out.
        self._spacing = 1.0 / lines_per_s
        self._burst_s = 1.0 - self._spacing
        self._due = clock()
        # Outcome -> events left out since `_left_out_since`, the first after the last summary
        # (a stage's outcomes are few).
        self._left_out: dict[str, int] = {}
        self._left_out_since = 0.0

    def outcome(self, outcome: str, **fields: str | int | float | None) -> None:
        """Log that an event ended (or paused) at `outcome`; None fields are left out."""
        log = self._log
        if log.isEnabledFor(logging.DEBUG):
            log.debug(outcome, extra={k: v for k, v in fields.items() if v is not None})
            return
        now = self._clock()
        due = self._due if self._due > now else now
        left_out = self._left_out
        if due - now > self._burst_s:
            if not left_out:
                self._left_out_since = now
            left_out[outcome] = left_out.get(outcome, 0) + 1
        else:
            self._due = due + self._spacing
            if log.isEnabledFor(logging.INFO):
                log.info(outcome, extra={k: v for k, v in fields.items() if v is not None})
        if left_out and now - self._left_out_since >= SUMMARY_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        """Write the summary of outcomes left out, if any were."""
        if not self._left_out:
            return
        if self._log.isEnabledFor(logging.INFO):
            self._log.info(
                "more event outcomes than the log budget",
                extra={
                    "left_out": dict(self._left_out),
                    "over_s": round(self._clock() - self._left_out_since, 1),
                    "budget_per_s": self._rate,
                },
            )
        self._left_out.clear()
