"""Bounds on what one CEL evaluation may cost, so that one event cannot stall a worker.

Neither engine offers a cost budget through its Python API, and cel-expr-python builds a
`map` or `filter` result by copying it at every step: over a list of n items that is n²
work and memory (8,000 items: 3.6 s and 1 GB). So the cost is bounded from both ends:

- at save time, a comprehension (`map`, `filter`, `all`, `exists`, `exists_one`) nested inside
  another is refused: its cost is the product of two sizes the sender chooses;
- at evaluation, an expression with a comprehension only runs when every list and map it is
  handed has at most `max_items` entries; beyond that it fails with a message saying so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runtime.cel.interface import CelEvaluationError, Program
from runtime.cel.projection import without_strings_and_comments

_COMPREHENSION = re.compile(r"\.\s*(map|filter|all|exists_one|exists)\s*\(")


def comprehension_depth(expression: str) -> int:
    """How deeply comprehensions nest in `expression` (0: none, 1: none inside another)."""
    code = without_strings_and_comments(expression)
    if code is None:
        return 0
    spans = [
        (match.end() - 1, _closing(code, match.end() - 1))
        for match in _COMPREHENSION.finditer(code)
    ]
    return max((sum(1 for start, end in spans if start <= at < end) for at, _ in spans), default=0)


def _closing(code: str, opening: int) -> int:
    depth = 0
    for index in range(opening, len(code)):
        if code[index] == "(":
            depth += 1
        elif code[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return len(code)


class BoundedInputProgram:
    """Evaluates a program with comprehensions only on inputs whose collections are small."""

    def __init__(self, program: Program, max_items: int) -> None:
        self._program = program
        self._max_items = max_items

    @property
    def expression(self) -> str:
        return self._program.expression

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        for name, value in activation.items():
            if isinstance(value, dict | list):
                _check_sizes(value, name, self._max_items)
        return self._program.evaluate(activation)


def _check_sizes(value: Any, path: str, max_items: int) -> None:
    # Iterative, depth-first: an event's nesting is the sender's choice. Paths are built only
    # for collections, which are what an error names.
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if len(item) > max_items:
            raise CelEvaluationError(
                f"{where} has {len(item)} entries; an expression with map, filter, all or "
                f"exists sees at most {max_items} (TRIGGERLINE_CEL_MAX_COLLECTION_ITEMS)"
            )
        children = item.items() if isinstance(item, dict) else enumerate(item)
        stack.extend(
            (f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]", child)
            for key, child in children
            if isinstance(child, dict | list)
        )
