"""A trigger's destinations as the registry takes them: the inputs' checks (names, CEL, limits),
the checks of a list as a whole, the per-destination target checks with their field paths,
signing secrets kept across updates by name, and what is shown back."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.registry.destinations import (
    destination_of,
    list_errors,
    shown,
    target_checks,
    with_target,
)
from ingest.registry.errors import Invalid
from ingest.registry.inputs import (
    DestinationIn,
    DestinationUpdate,
    TargetIn,
    TriggerCreate,
    TriggerUpdate,
    parsed,
)
from runtime.kafka_targets import KafkaTargetPolicy
from schemas.triggers import Destination, RateLimit, Target

pytestmark = pytest.mark.unit

TOPICS = KafkaTargetPolicy("triggerline")
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REF, SIGNING = "target.ref", "target.signing_secret"


def seal(value: str) -> str:
    return f"k1:sealed({value})"


def refused(model: Any, raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(Invalid) as caught:
        parsed(model, raw)
    return {error.path: error.message for error in caught.value.errors}


def trigger(**fields: Any) -> dict[str, Any]:
    return {"definition": "webhook", "name": "orders", **fields}


def destination(name: str = "audit", **fields: Any) -> dict[str, Any]:
    return {"name": name, "target": {"kind": "noop"}, **fields}


@pytest.mark.parametrize("name", ["default", "audit-log", "a", "x_1", "9lives", "a" * 63])
def test_names_of_lower_case_letters_digits_dashes_and_underscores_pass(name: str) -> None:
    assert parsed(DestinationIn, destination(name)).name == name


@pytest.mark.parametrize("name", ["", "Audit", "-x", "_x", "@replay", "a b", "a" * 64, "é"])
def test_other_names_are_refused_at_their_path(name: str) -> None:
    errors = refused(TriggerCreate, trigger(destinations=[destination(), destination(name)]))
    assert set(errors) == {"destinations[1].name"}


def test_a_transform_that_does_not_compile_names_its_line_and_column() -> None:
    errors = refused(
        TriggerCreate, trigger(destinations=[destination(transform='{"a": event.x +\n}')])
    )
    assert errors["destinations[0].transform"].startswith("line 2, column 1:")


def test_a_transform_must_yield_a_map_list_or_string_and_a_filter_a_bool() -> None:
    errors = refused(
        TriggerCreate,
        trigger(destinations=[destination(transform="event.count + 1", filter='"text"')]),
    )
    assert "expected map, list or string" in errors["destinations[0].transform"]
    assert "line 1, column 1" in errors["destinations[0].filter"]
    assert set(errors) == {"destinations[0].transform", "destinations[0].filter"}
    for transform in ('{"text": event.text}', "[event.a, event.b]", 'event.text + "!"'):
        assert parsed(DestinationIn, destination(transform=transform)).transform == transform


def test_a_nested_comprehension_is_refused_as_in_a_kinds_filter() -> None:
    nested = "event.items.all(i, event.others.exists(o, o == i))"
    errors = refused(DestinationIn, destination(filter=nested))
    assert "inside another" in errors["filter"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate_limit", {"per_second": 0}),
        ("rate_limit", {"per_second": 10_001}),
        ("rate_limit", {"per_second": 5, "burst": 0}),
        ("rate_limit", {"per_second": 5, "burst": 10_001}),
        ("rate_limit", {"burst": 5}),
        ("max_concurrency", 0),
        ("max_concurrency", 1001),
    ],
)
def test_limits_out_of_bounds_are_refused(field: str, value: Any) -> None:
    errors = refused(DestinationIn, destination(**{field: value}))
    assert all(path.startswith(field) for path in errors), errors


def test_limits_within_bounds_pass_and_burst_defaults_to_one() -> None:
    given = parsed(
        DestinationIn, destination(rate_limit={"per_second": 10_000}, max_concurrency=1000)
    )
    assert given.rate_limit is not None
    assert (given.rate_limit.per_second, given.rate_limit.burst) == (10_000, 1)
    built = destination_of(given, given.name, None, seal)
    assert built.rate_limit == RateLimit(10_000, 1)
    assert built.max_concurrency == 1000


def test_an_empty_destination_list_is_refused() -> None:
    assert "destinations" in refused(TriggerCreate, trigger(destinations=[]))
    assert "destinations" in refused(TriggerUpdate, {"destinations": []})


def test_a_partial_update_tells_omitted_from_null() -> None:
    cleared = parsed(DestinationUpdate, {"filter": None, "rate_limit": None})
    assert cleared.model_fields_set == {"filter", "rate_limit"}
    assert parsed(DestinationUpdate, {}).model_fields_set == set()


def test_duplicate_names_and_too_many_destinations_are_named() -> None:
    destinations = [Destination(name, Target("noop")) for name in ("a", "b", "a", "c")]
    errors = {e.path: e.message for e in list_errors(destinations, maximum=3)}
    assert (
        "at most 3 destinations (TRIGGERLINE_MAX_DESTINATIONS); this has 4"
        in (errors["destinations"])
    )
    assert "'a'" in errors["destinations[2].name"]
    assert set(errors) == {"destinations", "destinations[2].name"}
    assert list_errors(destinations[:2], maximum=2) == []


@pytest.mark.parametrize(
    ("target", "path", "message"),
    [
        (TargetIn(kind="http", ref="https://example.com"), SIGNING, "needs"),
        (TargetIn(kind="http", ref="ftp://x", signing_secret=WHSEC), REF, "http(s)"),
        (TargetIn(kind="http", ref="https://x", signing_secret="no"), SIGNING, "whsec"),
        (TargetIn(kind="kafka", ref="bad topic"), REF, "topic name"),
        (TargetIn(kind="kafka", ref="triggerline.raw-events"), REF, "prefix"),
        (TargetIn(kind="noop", ref="x"), REF, "no ref"),
        (TargetIn(kind="noop", signing_secret=WHSEC), SIGNING, "only http"),
    ],
)  # fmt: skip
def test_each_destinations_target_is_checked_under_its_own_path(
    target: TargetIn, path: str, message: str
) -> None:
    built = destination_of(DestinationIn(name="b", target=target), "b", None, seal)
    for where in ("", "destinations[1]."):
        errors = {e.path: e.message for e in target_checks(built, target, where, TOPICS)}
        assert message in errors[where + path], errors


def test_an_http_target_without_a_secret_keeps_the_one_stored_under_its_name() -> None:
    stored = Destination(
        "hook", Target("http", "https://old.example.com"), filter="true", signing_secret="k1:old"
    )
    moved = with_target(stored, TargetIn(kind="http", ref="https://new.example.com"), seal)
    assert (moved.target.ref, moved.signing_secret, moved.filter) == (
        "https://new.example.com",
        "k1:old",
        "true",
    )
    assert target_checks(moved, TargetIn(kind="http", ref="https://x"), "", TOPICS) == []
    rotated = with_target(
        stored, TargetIn(kind="http", ref="https://x", signing_secret=WHSEC), seal
    )
    assert rotated.signing_secret == seal(WHSEC)
    # Other kinds are not signed: the secret goes with the http target.
    assert with_target(stored, TargetIn(kind="noop"), seal).signing_secret is None
    replaced = destination_of(
        DestinationIn(name="hook", target=TargetIn(kind="http", ref="https://x")),
        "hook",
        stored,
        seal,
    )
    assert (replaced.signing_secret, replaced.filter) == ("k1:old", None)


def test_shown_says_whether_there_is_a_signing_secret_but_never_shows_it() -> None:
    signed = Destination(
        "hook",
        Target("http", "https://example.com"),
        transform='{"a": 1}',
        rate_limit=RateLimit(2.5, 3),
        signing_secret="k1:gAAAA-secret",
    )
    out = shown(signed)
    assert "k1:gAAAA-secret" not in repr(out)
    assert out["target"]["has_signing_secret"] is True
    assert out["rate_limit"] == {"per_second": 2.5, "burst": 3}
    assert set(out) == {"name", "target", "filter", "transform", "rate_limit", "max_concurrency"}
    assert shown(Destination("n", Target("noop")))["target"]["has_signing_secret"] is False
