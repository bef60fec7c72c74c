"""Properties of config validation: what is accepted, what is refused, and where it says so."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kinds import KINDS
from kinds.schedule import ALIASES
from kinds.slack_event_types import SLACK_EVENT_TYPES
from schemas.triggers import DefinitionSlug

pytestmark = pytest.mark.unit

EVENT_TYPES = sorted(SLACK_EVENT_TYPES)
ZONES = sorted(available_timezones())
IDENTIFIERS = st.from_regex(r"\A[a-z][a-z0-9_]{0,15}\Z").filter(
    lambda name: name not in {"in", "as", "null", "true", "false", "for", "if", "let", "var"}
)
# CEL string literal contents without quotes, backslashes or newlines.
TEXT = st.text(st.characters(exclude_characters='"\\\n\r', codec="utf-8"))


def errors(slug: DefinitionSlug, raw: Any) -> dict[tuple[int | str, ...], str]:
    with pytest.raises(ValidationError) as caught:
        KINDS[slug].validate_config(raw)
    return {tuple(e["loc"]): e["msg"] for e in caught.value.errors()}


def cron_field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    span = st.tuples(value, value).map(lambda ab: f"{min(ab)}-{max(ab)}")
    step = st.integers(1, high - low + 1).map(lambda n: f"*/{n}")
    return st.one_of(st.just("*"), value.map(str), span, step)


# Days of month up to 28 exist in every month, so every such schedule fires.
CRON = st.tuples(
    cron_field(0, 59), cron_field(0, 23), cron_field(1, 28), cron_field(1, 12), cron_field(0, 6)
).map(" ".join)


@given(st.lists(st.sampled_from(EVENT_TYPES), min_size=1, unique=True))
def test_any_subset_of_the_slack_catalogue_is_accepted(event_types: list[str]) -> None:
    assert KINDS["slack"].validate_config({"event_types": event_types}) == {
        "event_types": event_types
    }


@given(
    st.lists(st.sampled_from(EVENT_TYPES), unique=True),
    st.text(min_size=1).filter(lambda t: t not in SLACK_EVENT_TYPES),
    st.data(),
)
def test_an_unknown_event_type_is_refused_at_its_index(
    known: list[str], unknown: str, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(known)))
    event_types = [*known[:index], unknown, *known[index:]]
    found = errors("slack", {"event_types": event_types})
    assert list(found) == [("event_types", index)]
    assert "not a Slack Events API event type" in found[("event_types", index)]


@given(CRON, st.sampled_from(ZONES), st.sampled_from(["skip", "fire_once", "backfill"]))
@settings(max_examples=60)
def test_valid_schedules_are_accepted_and_normalizing_is_idempotent(
    schedule: str, timezone: str, misfire: str
) -> None:
    raw = {"schedule": schedule.replace(" ", "  "), "timezone": timezone, "misfire": misfire}
    normalized = KINDS["cron"].validate_config(raw)
    assert normalized["schedule"] == schedule
    assert KINDS["cron"].validate_config(normalized) == normalized


@given(st.sampled_from(sorted(ALIASES)))
def test_aliases_are_accepted(alias: str) -> None:
    assert KINDS["cron"].validate_config({"schedule": alias})["timezone"] == "UTC"


@given(CRON, st.integers(0, 4), st.integers(60, 10_000))
def test_an_out_of_range_field_is_refused_at_schedule(
    schedule: str, position: int, bad: int
) -> None:
    fields = schedule.split(" ")
    fields[position] = str(bad)
    assert list(errors("cron", {"schedule": " ".join(fields)})) == [("schedule",)]


@given(CRON, cron_field(0, 59))
def test_six_fields_are_refused(schedule: str, seconds: str) -> None:
    found = errors("cron", {"schedule": f"{seconds} {schedule}"})
    assert "5 fields" in found[("schedule",)]


@given(st.text(max_size=40).filter(lambda zone: zone not in ZONES))
def test_unknown_time_zones_are_refused(zone: str) -> None:
    assert list(errors("cron", {"schedule": "@hourly", "timezone": zone})) == [("timezone",)]


@given(
    st.sampled_from(["slack", "cron", "webhook"]),
    st.text(min_size=1).filter(
        lambda key: (
            key
            not in {"event_types", "filter", "rate_limit", "correlation", "schedule", "timezone"}
        )
    ),
)
def test_unknown_keys_are_refused_by_name(slug: DefinitionSlug, key: str) -> None:
    minimal: dict[str, dict[str, Any]] = {
        "slack": {"event_types": ["message"]},
        "cron": {"schedule": "@daily"},
        "webhook": {},
    }
    valid = minimal[slug]
    found = errors(slug, {**valid, key: 1})
    assert (key,) in found


@given(IDENTIFIERS, TEXT)
@settings(max_examples=40, deadline=None)
def test_cel_filters_compile_to_bool_and_correlations_to_string(field: str, text: str) -> None:
    comparison = f'event.{field} == "{text}"'
    assert KINDS["webhook"].validate_config(
        {"filter": comparison, "correlation": f"string(event.{field})"}
    ) == {"filter": comparison, "correlation": f"string(event.{field})"}
    found = errors("webhook", {"correlation": comparison})
    assert re.match(r"line 1, column \d+: ", found[("correlation",)])


@given(IDENTIFIERS, st.sampled_from(["==", "&&", "+", "(", "."]))
@settings(max_examples=40, deadline=None)
def test_truncated_cel_is_refused_with_line_and_column(field: str, dangling: str) -> None:
    expression = f"event.{field} {dangling}"
    found = errors("slack", {"event_types": ["message"], "filter": expression})
    message = found[("filter",)]
    match = re.match(r"line (\d+), column (\d+): ", message)
    assert match is not None, message
    assert int(match[1]) == 1
    assert 1 <= int(match[2]) <= len(expression) + 1
