"""Structured JSON logs, one object per line, carrying the event and correlation ids in scope.

Stages set the ids once per event with `log_context(...)`; every log line written inside that
block carries them, so one grep follows an event through all stages.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context")
_NO_CONTEXT: dict[str, str] = {}

# Attributes every LogRecord has; anything else passed through `extra=` is a structured field.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    merged = {**_context.get(_NO_CONTEXT), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_context.get(_NO_CONTEXT),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # Non-string keys (partition numbers, say) are written as strings rather than lost.
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` mapping; faust's worker takes the same mapping."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": sys.stderr}
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # Client libraries log every reconnect at INFO; warnings are what an operator needs.
        "loggers": {
            name: {"level": "WARNING"} for name in ("aiokafka", "faust", "mode", "uvicorn.access")
        },
    }


def configure_logging(service: str, level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))
    logging.getLogger("triggerline").info("starting", extra={"service": service})
