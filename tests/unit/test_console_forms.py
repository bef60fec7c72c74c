"""The console's forms to and from the control plane's inputs, and its CEL check."""

from __future__ import annotations

import pytest

from ingest.console.cel_check import cel_problem
from ingest.console.forms import (
    FormState,
    destination_body,
    destination_values,
    edit_errors,
    lines,
    trigger_update,
    trigger_values,
)
from ingest.registry.errors import FieldError, Invalid
from ingest.registry.inputs import DestinationIn, DestinationUpdate, parsed
from schemas.triggers import Destination, RateLimit, Target

pytestmark = pytest.mark.unit


def test_a_trigger_edit_form_round_trips_its_config() -> None:
    config = {
        "event_types": ["message", "app_mention"],
        "filter": "event.x == 1",
        "rate_limit": {"per_second": 5.0},
    }
    values = trigger_values("chat", config)
    assert values["filter"] == "event.x == 1"
    assert values["event_types"] == "message\napp_mention"
    assert "filter" not in values["config"]
    body, errors = trigger_update(values, ("filter", "event_types"))
    assert errors == []
    assert body == {"name": "chat", "config": config}


def test_blank_filter_and_types_are_left_out_and_bad_json_is_named() -> None:
    body, errors = trigger_update(
        {"name": "n", "config": "", "filter": "  ", "event_types": ""}, ("filter", "event_types")
    )
    assert (body, errors) == ({"name": "n", "config": {}}, [])
    _, errors = trigger_update({"name": "n", "config": "{nope"}, ())
    assert [e.path for e in errors] == ["config"]
    assert errors[0].message.startswith("not valid JSON")
    _, errors = trigger_update({"name": "n", "config": "[1]"}, ())
    assert errors == [FieldError("config", "a JSON object ({...})")]
    _, errors = trigger_update({"name": "n", "config": '{"filter": "true"}'}, ("filter",))
    assert [e.path for e in errors] == ["config.filter"]
    # A kind without a filter (cron) ignores the field rather than inventing config.
    body, _ = trigger_update({"name": "n", "config": "{}", "filter": "true"}, ())
    assert body["config"] == {}


def test_edit_errors_are_named_by_the_form_fields() -> None:
    errors = [
        FieldError("config.filter", "line 1, column 3: bad"),
        FieldError("config.event_types[1]", "unknown"),
        FieldError("config.rate_limit.per_second", "too big"),
        FieldError("name", "empty"),
    ]
    state = FormState({}, edit_errors(errors))
    assert state.error_for("filter") == "line 1, column 3: bad"
    assert state.error_for("event_types") == "unknown"
    assert state.error_for("config") == "too big"
    assert state.error_for("name") == "empty"
    assert state.error_for("other") is None


def test_a_destination_form_becomes_the_api_input() -> None:
    values = {
        "name": "ops",
        "kind": "http",
        "ref": "https://example.com/hook",
        "signing_secret": "",
        "timeout_s": "5",
        "max_attempts": "",
        "filter": "event.x == 1",
        "transform": "",
        "per_second": "2.5",
        "burst": "",
        "max_concurrency": "4",
    }
    given = parsed(DestinationIn, destination_body(values))
    assert given.target.timeout_s == 5.0
    assert given.target.max_attempts == 8
    assert given.target.signing_secret is None
    assert given.rate_limit is not None
    assert (given.rate_limit.per_second, given.rate_limit.burst) == (2.5, 1)
    assert given.max_concurrency == 4
    replacing = parsed(DestinationUpdate, destination_body(values, replacing=True))
    assert replacing.model_fields_set >= {"filter", "transform", "rate_limit", "max_concurrency"}
    assert replacing.transform is None


def test_a_destination_form_with_bad_numbers_names_the_fields() -> None:
    body = destination_body({"name": "x", "kind": "noop", "timeout_s": "soon", "burst": "3"})
    with pytest.raises(Invalid) as refused:
        parsed(DestinationIn, body)
    assert {e.path for e in refused.value.errors} == {
        "target.timeout_s",
        "rate_limit.per_second",
    }


def test_a_stored_destination_fills_its_form() -> None:
    stored = Destination(
        "ops",
        Target("http", "https://example.com", timeout_s=2.5),
        filter="true",
        rate_limit=RateLimit(10.0, 3),
        signing_secret="k1:secret",
    )
    values = destination_values(stored)
    assert values["timeout_s"] == "2.5"
    assert values["max_attempts"] == "8"
    assert (values["per_second"], values["burst"]) == ("10", "3")
    assert values["max_concurrency"] == ""
    assert "signing_secret" not in values
    assert "k1:secret" not in values.values()


def test_lines_split_on_newlines_and_commas() -> None:
    assert lines(" message\n\napp_mention, reaction_added ,") == [
        "message",
        "app_mention",
        "reaction_added",
    ]


@pytest.mark.parametrize(
    ("source", "kind", "line", "column", "message"),
    [
        ("event.x == 1", "filter", None, None, None),
        ('{"a": event.x}', "transform", None, None, None),
        ("event.x ==", "filter", 1, 11, "Syntax error"),
        ("event.x == 1 &&\n  event.y ==", "filter", 2, 13, "Syntax error"),
        ('"text"', "filter", 1, 1, "expected bool"),
        ("1", "transform", 1, 1, "expected map, list or string"),
        ("event.a.all(x, event.b.exists(y, y == x))", "filter", None, None, "inside another"),
        ("", "filter", None, None, "at least 1 character"),
    ],
)
def test_cel_problems_carry_line_and_column(
    source: str, kind: str, line: int | None, column: int | None, message: str | None
) -> None:
    problem = cel_problem(source, kind)
    if message is None:
        assert problem is None
        return
    assert problem is not None
    assert (problem.line, problem.column) == (line, column)
    assert message in problem.message
