"""Why a CEL filter did not pass an event: which of its top-level clauses decided it.

A filter is split into the clauses a reader sees: its top-level `||` disjuncts, or, when it is
one disjunct, its top-level `&&` conjuncts. Only text outside string literals, comments and
brackets counts, and a top-level `?` (a ternary, or an optional selection) leaves the filter
whole: the clauses of `a && b ? c : d` are not `a` and `b ? c : d`.

Each clause is compiled once, with the engine and declarations the filter itself is compiled
with, when a trigger's rules are compiled for a preview; explaining an event only evaluates
them. When any clause does not compile on its own (one that uses a macro's variable bound
outside it), the explanation is only that the filter as a whole returned false.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kinds.config import CEL_DECLARATIONS
from runtime.cel import CelCompileError, CelEvaluationError, CelType, EngineName, Program, compile
from runtime.cel.projection import without_strings_and_comments

Joiner = Literal["&&", "||"]
WHOLE_FILTER_FALSE = "the filter as a whole returned false"
_JOINERS: tuple[Joiner, ...] = ("||", "&&")
_OPENING = "([{"
_CLOSING = ")]}"


def split_clauses(source: str) -> tuple[Joiner | None, tuple[str, ...]]:
    """The filter's top-level clauses and the operator joining them; (None, (source,)) when
    it has a single clause or cannot be split safely."""
    whole: tuple[Joiner | None, tuple[str, ...]] = (None, (source.strip(),))
    code = without_strings_and_comments(source)
    if code is None:
        return whole
    cuts: dict[Joiner, list[int]] = {"||": [], "&&": []}
    depth, index = 0, 0
    while index < len(code):
        char = code[index]
        if char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth -= 1
        elif depth == 0:
            if char == "?":
                return whole
            joined_here = next((op for op in _JOINERS if code.startswith(op, index)), None)
            if joined_here is not None:
                cuts[joined_here].append(index)
                index += 2
                continue
        index += 1
    joiner: Joiner = "||" if cuts["||"] else "&&"
    if not cuts[joiner] or depth != 0:
        return whole
    starts = [0, *(cut + 2 for cut in cuts[joiner])]
    ends = [*cuts[joiner], len(source)]
    clauses = tuple(source[start:end].strip() for start, end in zip(starts, ends, strict=True))
    if not all(clauses):
        return whole
    return joiner, clauses


@dataclass(frozen=True, slots=True)
class Clause:
    number: int
    source: str
    program: Program


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why the filter did not pass an event. For an `&&` filter, `clause` is the 1-based number
    of the first clause that returned false or failed (with `error` when it failed)."""

    reason: str
    clause: int | None = None
    clause_source: str | None = None
    error: str | None = None


WHOLE = Explanation(WHOLE_FILTER_FALSE)


@dataclass(frozen=True, slots=True)
class FilterClauses:
    """A filter's top-level clauses, compiled; none when it is not split."""

    joiner: Joiner | None
    clauses: tuple[Clause, ...]

    def explain(self, fields: Mapping[str, Any]) -> Explanation:
        """Why the filter did not pass the event with these fields (`event`)."""
        if self.joiner == "&&":
            return self._first_not_true(fields)
        if self.joiner == "||":
            return self._none_true(fields)
        return WHOLE

    def _first_not_true(self, fields: Mapping[str, Any]) -> Explanation:
        total = len(self.clauses)
        for clause in self.clauses:
            try:
                value = clause.program.evaluate({"event": fields})
            except CelEvaluationError as exc:
                return Explanation(
                    f"clause {clause.number} of {total} ({clause.source}) failed: {exc}",
                    clause.number,
                    clause.source,
                    str(exc),
                )
            if value is not True:
                return Explanation(
                    f"clause {clause.number} of {total} ({clause.source}) returned false",
                    clause.number,
                    clause.source,
                )
        return WHOLE

    def _none_true(self, fields: Mapping[str, Any]) -> Explanation:
        outcomes: list[str] = []
        failed = False
        for clause in self.clauses:
            try:
                value = clause.program.evaluate({"event": fields})
            except CelEvaluationError as exc:
                failed = True
                outcomes.append(f"({clause.number}) {clause.source} failed: {exc}")
                continue
            if value is True:
                return WHOLE
            outcomes.append(f"({clause.number}) {clause.source}")
        if failed:
            return Explanation("no clause returned true: " + "; ".join(outcomes))
        return Explanation("every clause returned false: " + "; ".join(outcomes))


def compile_clauses(
    source: str, engine: EngineName, max_collection_items: int | None = None
) -> FilterClauses:
    """The filter's clauses, each compiled as the filter is (result type bool)."""
    joiner, sources = split_clauses(source)
    if joiner is None:
        return FilterClauses(None, ())
    clauses = []
    for number, text in enumerate(sources, start=1):
        try:
            program = compile(text, CEL_DECLARATIONS, CelType.BOOL, engine, max_collection_items)
        except CelCompileError:
            return FilterClauses(None, ())
        clauses.append(Clause(number, text, program))
    return FilterClauses(joiner, tuple(clauses))
