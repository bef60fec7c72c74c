"""Handing a CEL program only the fields it selects: which expressions qualify, and that a
projected program answers exactly as the whole map would, on both engines."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.processor_workload import FILTERS
from runtime.cel import ENGINES, CelEvaluationError, CelType, EngineName, compile
from runtime.cel.fast import compile_fast
from runtime.cel.interface import Program
from runtime.cel.projection import referenced_fields
from runtime.cel.reference import compile_reference

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("expression", "fields"),
    [
        ('event.text.contains("deploy")', {"text"}),
        ("has(event.user_id) && event.bot_id == null", {"user_id", "bot_id"}),
        ("event . text == 'a'", {"text"}),
        ('event.text == "event.user_id"', {"text"}),
        ("event.text == '''a ' event.secret '''", {"text"}),
        ('event.text == r"a\\" || event.ts == "b"', {"text", "ts"}),
        ('event.text == "a\\" event.secret"', {"text"}),
        ('event.text // event["whole"]\n == "a"', {"text"}),
        ("true", set()),
        ("event.event_type == 'message'", {"event_type"}),
    ],
)
def test_plain_selections_name_their_fields(expression: str, fields: set[str]) -> None:
    assert referenced_fields(expression, "event") == frozenset(fields)


@pytest.mark.parametrize(
    "expression",
    [
        'event["text"] == "x"',
        "size(event) > 2",
        '"text" in event',
        'event.exists(k, k == "text")',
        'event.?text.orValue("") == ""',
        "[1].exists(event, event > 0)",
        "event == {}",
        '"unterminated',
    ],
)
def test_any_other_use_means_the_whole_map(expression: str) -> None:
    assert referenced_fields(expression, "event") is None


EVENTS: list[dict[str, Any]] = [
    {"text": "deploy to prod", "channel_id": "C01", "user_id": "U01", "bot_id": None},
    {"text": None, "channel_id": "C09", "user_id": "U0BOT", "bot_id": "B1"},
    {"channel_id": "C02", "subtype": None, "thread_id": None},
    {},
]


def unprojected(expression: str, engine: EngineName) -> Program:
    declarations = {"event": CelType.MAP}
    if engine == "celpy":
        return compile_reference(expression, declarations, CelType.BOOL)
    return compile_fast(expression, declarations, CelType.BOOL)


def outcome(program: Program, event: dict[str, Any]) -> Any:
    try:
        return program.evaluate({"event": event})
    except CelEvaluationError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("expression", FILTERS)
def test_a_projected_program_answers_as_the_whole_map_does(
    engine: EngineName, expression: str
) -> None:
    projected = compile(expression, {"event": CelType.MAP}, CelType.BOOL, engine)
    whole = unprojected(expression, engine)
    assert [outcome(projected, e) for e in EVENTS] == [outcome(whole, e) for e in EVENTS]
