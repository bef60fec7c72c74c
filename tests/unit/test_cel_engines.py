"""Differential tests: the same expressions through both CEL engines must agree.

Where celpy (no type checker) can only notice a type error at evaluation, the fast engine
notices it at compile time; both must still reject the expression.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runtime.cel import (
    ENGINES,
    CelCompileError,
    CelEvaluationError,
    CelType,
    EngineName,
    compile,
)

pytestmark = pytest.mark.unit

EVENT = {
    "event_type": "message",
    "channel_id": "C42",
    "text": "Deploy FAILED on prod-eu",
    "user_id": "U7",
    "labels": ["prod", "eu"],
    "count": 3,
    "ratio": 0.5,
    "time": "2026-01-15T10:30:00Z",
    "nested": {"team": {"id": "T1"}},
    "missing_value": None,
}

REJECTED = "rejected"


def run(engine: EngineName, expression: str, result_type: CelType | None = None) -> Any:
    """The value, or REJECTED if compiling or evaluating failed."""
    try:
        program = compile(expression, {"event": CelType.MAP}, result_type, engine)
        return program.evaluate({"event": EVENT})
    except (CelCompileError, CelEvaluationError):
        return REJECTED


CASES: list[tuple[str, Any]] = [
    # strings
    ('event.text.contains("FAILED")', True),
    ('event.text.startsWith("Deploy") && event.text.endsWith("-eu")', True),
    ('event.text.matches("prod-(eu|us)$")', True),
    ("size(event.text)", 24),
    ('event.user_id + ":" + event.channel_id', "U7:C42"),
    ('event.channel_id == "C43"', False),
    # timestamps and durations
    ('timestamp(event.time) > timestamp("2026-01-01T00:00:00Z")', True),
    ('timestamp(event.time) + duration("90m")', datetime(2026, 1, 15, 12, 0, tzinfo=UTC)),
    ('timestamp(event.time) - timestamp("2026-01-15T10:00:00Z")', timedelta(minutes=30)),
    ('duration("1h") > duration("59m")', True),
    ("timestamp(event.time).getHours()", 10),
    ('timestamp("not a time")', REJECTED),
    # lists and `in`
    ('"prod" in event.labels', True),
    ('"staging" in event.labels', False),
    ('event.channel_id in ["C1", "C42"]', True),
    ("size(event.labels) == 2", True),
    ('event.labels.exists(l, l == "eu")', True),
    ('event.labels.all(l, l.startsWith("p"))', False),
    ('event.labels.filter(l, l != "eu")', ["prod"]),
    ("event.labels.map(l, size(l))", [4, 2]),
    # maps, missing fields and has()
    ('event.nested.team.id == "T1"', True),
    ("event.no_such_field", REJECTED),
    ('event.no_such_field == "x"', REJECTED),
    ("has(event.no_such_field)", False),
    ('has(event.no_such_field) && event.no_such_field == "x"', False),
    ("event.missing_value == null", True),
    # numbers
    ("event.count * 2 + 1", 7),
    ("event.ratio * 4.0", 2.0),
    ("event.count / 0", REJECTED),
    # type errors: dynamic (both at evaluation) and static (fast engine at compile time)
    ("event.text + 1", REJECTED),
    ('event.count + "1"', REJECTED),
    ('1 == "a"', REJECTED),
    ("size(1)", REJECTED),
    ("size(event.missing_value)", REJECTED),
    ("size(event.missing_value) < 5", REJECTED),
    # undeclared names
    ("message.text", REJECTED),
    ('event.text.noSuchFunction("x")', REJECTED),
]


@pytest.mark.parametrize(("expression", "expected"), CASES)
@pytest.mark.parametrize("engine", ENGINES)
def test_engines_agree_on_values_and_rejections(
    engine: EngineName, expression: str, expected: Any
) -> None:
    assert run(engine, expression) == expected


@pytest.mark.parametrize(
    ("expression", "line", "column"),
    [
        ("event.x == == 1", 1, 12),
        ("event.)", 1, 7),
        ("1 +* 2", 1, 4),
        ("event.text &&", 1, 14),
        ('event.text.contains("a") &&\n  event.channel_id ==', 2, 22),
        ("(event.text", 1, 12),
    ],
)
@pytest.mark.parametrize("engine", ENGINES)
def test_bad_expressions_report_the_same_position(
    engine: EngineName, expression: str, line: int, column: int
) -> None:
    with pytest.raises(CelCompileError) as raised:
        compile(expression, {"event": CelType.MAP}, CelType.BOOL, engine)
    assert (raised.value.line, raised.value.column) == (line, column)
    assert str(raised.value).startswith(f"{line}:{column}: ")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_result_of_the_wrong_type_is_rejected(engine: EngineName) -> None:
    assert run(engine, "event.text", CelType.BOOL) == REJECTED
    assert run(engine, 'event["text"]', CelType.STRING) == "Deploy FAILED on prod-eu"
    assert run(engine, "event.count > 1", CelType.BOOL) is True


@pytest.mark.parametrize("engine", ENGINES)
def test_evaluation_errors_name_the_problem(engine: EngineName) -> None:
    program = compile('event.user.name == "x"', {"event": CelType.MAP}, CelType.BOOL, engine)
    with pytest.raises(CelEvaluationError, match="user"):
        program.evaluate({"event": EVENT})


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("expression", ["[event.missing]", '{"a": event.missing}'])
def test_an_error_inside_a_built_list_or_map_is_an_evaluation_error(
    engine: EngineName, expression: str
) -> None:
    program = compile(expression, {"event": CelType.MAP}, None, engine)
    with pytest.raises(CelEvaluationError, match="missing"):
        program.evaluate({"event": EVENT})


def test_the_fast_engine_rejects_static_type_errors_at_compile_time() -> None:
    with pytest.raises(CelCompileError, match="no matching overload") as raised:
        compile('1 == "a"', {}, CelType.BOOL, "cel-expr-python")
    assert (raised.value.line, raised.value.column) == (1, 3)
    with pytest.raises(CelCompileError, match="expected bool"):
        compile('"text"', {}, CelType.BOOL, "cel-expr-python")


def test_a_program_is_reusable_across_activations() -> None:
    for engine in ENGINES:
        program = compile('event.kind == "a"', {"event": CelType.MAP}, CelType.BOOL, engine)
        assert [program.evaluate({"event": {"kind": k}}) for k in ("a", "b", "a")] == [
            True,
            False,
            True,
        ]
