"""Log lines: JSON for machines, one short line for a person, and one line per event outcome
within the log budget, the rest counted and summed up."""

from __future__ import annotations

import logging
import time

import orjson
import pytest

from runtime.logging import (
    SUMMARY_INTERVAL_S,
    HumanFormatter,
    JsonFormatter,
    OutcomeLog,
    log_context,
    logging_config,
)

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "triggerline.x", "msg": msg, "levelno": level})
    made.levelname = logging.getLevelName(level)
    made.created = 1_700_000_000.25
    made.msecs = 250.0
    for key, value in extra.items():
        setattr(made, key, value)
    return made


@pytest.fixture
def outcomes_logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.INFO, logger="triggerline.test-outcomes")
    return logging.getLogger("triggerline.test-outcomes")


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records]


def test_each_outcome_gets_a_line_within_the_budget_and_the_rest_a_summary(
    outcomes_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    outcomes = OutcomeLog(outcomes_logger, lines_per_s=2, clock=clock)

    for n in range(5):
        outcomes.outcome("routed" if n % 2 else "skipped", event_id=f"e{n}", reason=None)
    clock.now += 0.5
    outcomes.outcome("routed", event_id="e5")

    assert messages(caplog) == [("INFO", "skipped"), ("INFO", "routed"), ("INFO", "routed")]
    assert [getattr(r, "event_id", None) for r in caplog.records] == ["e0", "e1", "e5"]
    # A field given as None is left out of the line.
    assert not hasattr(caplog.records[0], "reason")

    clock.now += SUMMARY_INTERVAL_S
    outcomes.outcome("skipped", event_id="e6")

    summary = caplog.records[-1]
    assert summary.getMessage() == "more event outcomes than the log budget"
    assert getattr(summary, "left_out", None) == {"skipped": 2, "routed": 1}
    assert [r.getMessage() for r in caplog.records[-2:]] == [
        "skipped",
        "more event outcomes than the log budget",
    ]


def test_a_flush_sums_up_what_was_left_out_and_nothing_when_nothing_was(
    outcomes_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = OutcomeLog(outcomes_logger, lines_per_s=1, clock=Clock())
    outcomes.flush()
    assert caplog.records == []

    for _ in range(3):
        outcomes.outcome("duplicate")
    outcomes.flush()

    assert getattr(caplog.records[-1], "left_out", None) == {"duplicate": 2}


def test_every_outcome_is_logged_at_debug_and_none_above_info(
    outcomes_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = OutcomeLog(outcomes_logger, lines_per_s=1, clock=Clock())
    caplog.set_level(logging.DEBUG, logger=outcomes_logger.name)
    for _ in range(5):
        outcomes.outcome("routed")
    assert messages(caplog) == [("DEBUG", "routed")] * 5

    caplog.clear()
    caplog.set_level(logging.WARNING, logger=outcomes_logger.name)
    outcomes.outcome("routed")
    outcomes.flush()
    assert caplog.records == []


def test_json_lines_carry_the_ids_in_scope() -> None:
    with log_context(event_id="Ev1", trigger_id="t-1", correlation_id=None):
        line = JsonFormatter().format(record("delivered", destination="default", attempt=2))

    assert orjson.loads(line) == {
        "ts": "2023-11-14T22:13:20.250+00:00",
        "level": "info",
        "logger": "triggerline.x",
        "msg": "delivered",
        "event_id": "Ev1",
        "trigger_id": "t-1",
        "destination": "default",
        "attempt": 2,
    }


def test_a_human_line_is_time_stage_outcome_then_the_ids() -> None:
    formatter = HumanFormatter("dispatchers")
    clock = time.strftime("%H:%M:%S", time.localtime(1_700_000_000.25))

    with log_context(event_id="Ev1", trigger_id="t-1", correlation_id="C1:17"):
        delivered = formatter.format(
            record("delivered", destination="default", attempt=2, error="target answered 503")
        )
    warned = formatter.format(
        record("cannot write to x; retrying", logging.WARNING, partitions={1: 0}, service="x")
    )

    assert delivered == (
        f"{clock}.250 dispatchers delivered     trigger=t-1 event=Ev1 correlation=C1:17 "
        'destination=default attempt=2 error="target answered 503"'
    )
    assert (
        warned
        == f'{clock}.250 dispatchers WARNING cannot write to x; retrying partitions={{"1":0}}'
    )


def test_the_format_is_chosen_by_the_setting() -> None:
    human = logging_config("INFO", "human", "ingest")["formatters"]["chosen"]
    machine = logging_config("INFO", "json", "ingest")["formatters"]["chosen"]
    assert human == {"()": HumanFormatter, "service": "ingest"}
    assert machine == {"()": JsonFormatter}
