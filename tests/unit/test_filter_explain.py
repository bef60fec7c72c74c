"""Explaining a filter's miss by its top-level clauses: how a filter is split, and which clause
is named, on both CEL engines."""

from __future__ import annotations

import pytest

from kinds.filter_explain import WHOLE_FILTER_FALSE, compile_clauses, split_clauses
from runtime.cel import ENGINES, EngineName

pytestmark = pytest.mark.unit

X_AND_Y = 'event.x == 1 && event.y.startsWith("a")'


@pytest.mark.parametrize(
    ("source", "joiner", "clauses"),
    [
        (X_AND_Y, "&&", ("event.x == 1", 'event.y.startsWith("a")')),
        ("a&&b&&c", "&&", ("a", "b", "c")),
        ("a || b", "||", ("a", "b")),
        # `||` binds looser: the disjuncts are split, an `&&` inside one stays.
        ("a || b && c", "||", ("a", "b && c")),
        ("a && b || c", "||", ("a && b", "c")),
        ("a && (b || c)", "&&", ("a", "(b || c)")),
        ("(a && b) && ((c || d) && e)", "&&", ("(a && b)", "((c || d) && e)")),
        (
            "event.tags.exists(t, t == 'a' && t != 'b') && ok",
            "&&",
            (
                "event.tags.exists(t, t == 'a' && t != 'b')",
                "ok",
            ),
        ),
        ('[a && b, c][0] && {"k": d || e}.k', "&&", ("[a && b, c][0]", '{"k": d || e}.k')),
        (
            "event.t == \"x && y\" && event.u == 'p || q'",
            "&&",
            (
                'event.t == "x && y"',
                "event.u == 'p || q'",
            ),
        ),
        ('event.t == """a\n&& b""" && c', "&&", ('event.t == """a\n&& b"""', "c")),
        ('event.t == r"\\" && c', "&&", ('event.t == r"\\"', "c")),
        ("a && // b && c\n d", "&&", ("a", "// b && c\n d")),
    ],
)
def test_top_level_clauses_are_split_outside_strings_comments_and_brackets(
    source: str, joiner: str, clauses: tuple[str, ...]
) -> None:
    assert split_clauses(source) == (joiner, clauses)


@pytest.mark.parametrize(
    "source",
    [
        "event.x == 1",
        "(a && b)",
        "a && b ? c : d",
        "a ? b && c : d || e",
        "event.?x.orValue(1) == 1 && b",
        '"a && b"',
        "a && ",
        "&& a",
        '"unterminated && b',
        "(a && b",
    ],
)
def test_a_filter_with_one_clause_or_a_top_level_ternary_is_not_split(source: str) -> None:
    joiner, clauses = split_clauses(source)
    assert joiner is None
    assert clauses == (source.strip(),)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_first_false_clause_of_a_conjunction_is_named(engine: EngineName) -> None:
    clauses = compile_clauses(X_AND_Y, engine)
    first = clauses.explain({"x": 2, "y": "abc"})
    assert (first.clause, first.clause_source, first.error) == (1, "event.x == 1", None)
    assert first.reason == "clause 1 of 2 (event.x == 1) returned false"
    second = clauses.explain({"x": 1, "y": "bcd"})
    assert (second.clause, second.clause_source) == (2, 'event.y.startsWith("a")')
    assert second.reason == 'clause 2 of 2 (event.y.startsWith("a")) returned false'


@pytest.mark.parametrize("engine", ENGINES)
def test_a_clause_that_fails_is_named_with_its_error(engine: EngineName) -> None:
    clauses = compile_clauses(X_AND_Y, engine)
    missing = clauses.explain({"x": 1})
    assert (missing.clause, missing.clause_source) == (2, 'event.y.startsWith("a")')
    assert missing.error is not None
    assert "y" in missing.error
    assert missing.reason.startswith('clause 2 of 2 (event.y.startsWith("a")) failed: ')
    wrong_type = clauses.explain({"x": 1, "y": 5})
    assert (wrong_type.clause, wrong_type.error is not None) == (2, True)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_clause_named_is_the_first_in_source_order(engine: EngineName) -> None:
    clauses = compile_clauses("event.a == 1 && event.b == 2 && event.c == 3", engine)
    assert clauses.explain({"a": 1, "b": 0, "c": 0}).clause == 2
    assert clauses.explain({"a": 1, "b": 2, "c": 0}).clause == 3
    # A missing field before a false clause: the missing one is named, as it comes first.
    failed = clauses.explain({"b": 0, "c": 3})
    assert (failed.clause, failed.error is not None) == (1, True)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_disjunction_lists_every_clause(engine: EngineName) -> None:
    clauses = compile_clauses('event.x == 1 || (event.y == "a" && event.z)', engine)
    missed = clauses.explain({"x": 2, "y": "b", "z": True})
    assert missed.clause is None
    assert missed.reason == (
        'every clause returned false: (1) event.x == 1; (2) (event.y == "a" && event.z)'
    )
    failed = clauses.explain({"y": "b"})
    assert failed.reason.startswith("no clause returned true: (1) event.x == 1 failed: ")
    assert failed.reason.endswith('; (2) (event.y == "a" && event.z)')


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "source",
    [
        "event.x == 1",
        "event.x == 1 ? true : event.y == 2",
    ],
)
def test_without_clauses_of_its_own_the_whole_filter_is_blamed(
    engine: EngineName, source: str
) -> None:
    explanation = compile_clauses(source, engine).explain({"x": 2, "y": 3, "tags": [0]})
    assert (explanation.reason, explanation.clause) == (WHOLE_FILTER_FALSE, None)


def test_a_clause_that_does_not_compile_alone_makes_the_whole_filter_the_answer() -> None:
    # `t` is declared nowhere: the checking engine refuses the clause alone (celpy only finds
    # an unknown variable when evaluating).
    clauses = compile_clauses("t > 1 && event.x == 1", "cel-expr-python")
    assert (clauses.joiner, clauses.clauses) == (None, ())
    assert clauses.explain({"x": 2}).reason == WHOLE_FILTER_FALSE


def test_a_macro_variable_stays_inside_its_clause() -> None:
    assert split_clauses("event.tags.exists(t, t > 1 && t < 3)")[0] is None
    assert split_clauses("event.tags.exists(t, t > 1) && event.tags.all(t, t < 3)") == (
        "&&",
        ("event.tags.exists(t, t > 1)", "event.tags.all(t, t < 3)"),
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_clauses_are_compiled_once_with_the_filter_bounds(engine: EngineName) -> None:
    clauses = compile_clauses("event.tags.exists(t, t == 1) && event.x == 1", engine, 3)
    assert [c.number for c in clauses.clauses] == [1, 2]
    too_many = clauses.explain({"tags": [5, 6, 7, 8], "x": 1})
    assert (too_many.clause, too_many.error is not None) == (1, True)
