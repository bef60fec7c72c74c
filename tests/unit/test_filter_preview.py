"""A filter preview's verdict per event, and the windows it accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.registry.errors import Invalid
from ingest.replay.preview import EPOCH, preview_window, verdict_of
from kinds.filter_explain import compile_clauses
from runtime.cel import ENGINES, EngineName
from tests.unit.support.routing import raw, trigger

pytestmark = pytest.mark.unit

MESSAGE = {
    "type": "event_callback",
    "event_id": "Ev9",
    "event": {"type": "message", "channel": "C1", "ts": "1.5", "text": "deploy failed"},
}


@pytest.mark.parametrize("engine", ENGINES)
def test_verdicts_name_the_reason(engine: EngineName) -> None:
    source = 'event.channel_id == "C1" && event.text.startsWith("ok")'
    rules = trigger(engine=engine, filter=source, event_types=["message"])
    clauses = compile_clauses(source, engine)
    missed = verdict_of(raw(MESSAGE), rules, clauses)
    assert (missed.verdict, missed.clause, missed.event_type) == ("miss", 2, "message")
    assert missed.reason == 'clause 2 of 2 (event.text.startsWith("ok")) returned false'
    assert missed.correlation_id == "C1:1.5"

    matched = verdict_of(raw(MESSAGE), trigger(engine=engine), None)
    assert (matched.verdict, matched.reason, matched.event_id) == ("match", None, "Ev9")

    other_type = trigger(engine=engine, filter=source, event_types=["app_mention"])
    typed = verdict_of(raw(MESSAGE), other_type, clauses)
    assert (typed.verdict, typed.clause) == ("miss", None)
    assert typed.reason == "event_type 'message' not in [app_mention]"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_failing_clause_is_an_error_naming_it(engine: EngineName) -> None:
    source = 'event.channel_id == "C1" && event.no_such == 1'
    failed = verdict_of(
        raw(MESSAGE), trigger(engine=engine, filter=source), compile_clauses(source, engine)
    )
    assert (failed.verdict, failed.clause, failed.clause_source) == (
        "error",
        2,
        "event.no_such == 1",
    )
    assert failed.reason is not None
    assert failed.reason.startswith("clause 2 of 2 (event.no_such == 1) failed: ")


def test_ignored_and_unroutable_events() -> None:
    paused = verdict_of(raw(MESSAGE), trigger(status="paused"), None)
    assert (paused.verdict, paused.reason) == ("ignored", "trigger paused")
    not_json = verdict_of(raw("{not json"), trigger(), None)
    assert not_json.verdict == "error"
    assert not_json.reason is not None
    assert not_json.reason.startswith("unroutable: ")
    assert not_json.event_id == "r1"


def test_a_stored_filter_that_does_not_compile_is_an_error_for_every_event() -> None:
    rules = trigger(filter="event.text ==")
    assert rules.config_error is not None
    failed = verdict_of(raw(MESSAGE), rules, None)
    assert (failed.verdict, failed.reason) == ("error", rules.config_error)


def test_a_correlation_id_over_the_bound_is_an_error_as_in_the_processors() -> None:
    # "C1:1.5" is 6 bytes.
    within = verdict_of(raw(MESSAGE), trigger(), None, max_correlation_id_bytes=6)
    over = verdict_of(raw(MESSAGE), trigger(), None, max_correlation_id_bytes=5)
    assert within.verdict == "match"
    assert over.verdict == "error"
    assert over.reason is not None
    assert over.reason.startswith("correlation id is 6 bytes, over the limit of 5")


def test_windows() -> None:
    assert preview_window(None, None, None).last == 100
    assert preview_window(1000, None, None).last == 1000
    since = datetime(2026, 1, 1)
    ranged = preview_window(None, since, None)
    assert ranged.since == since.replace(tzinfo=UTC)
    assert ranged.until is not None
    assert ranged.until > ranged.since
    assert preview_window(None, datetime(1900, 1, 1, tzinfo=UTC), None).since == EPOCH
    for last, start, end, path in [
        (0, None, None, "last"),
        (1001, None, None, "last"),
        (5, since, None, "last"),
        (None, None, since, "since"),
        (None, since, since, "until"),
    ]:
        with pytest.raises(Invalid) as refused:
            preview_window(last, start, end)
        assert [e.path for e in refused.value.errors] == [path]
