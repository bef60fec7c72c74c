"""Triggerline's CEL engine interface, shared by the processors and the registry's validation.

    program = compile('event.text.contains("deploy")', {"event": CelType.MAP}, CelType.BOOL)
    program.evaluate({"event": {"text": "deploy now"}})  # True

Two engines sit behind it: `cel-expr-python` (Google's C++ runtime; type-checks at compile time)
and `celpy` (pure Python, the reference). The default is the fast one, chosen by
`benchmarks/processor_cel_engines.py`; both run the same differential test cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from runtime.cel.cost import BoundedInputProgram, comprehension_depth
from runtime.cel.fast import compile_fast
from runtime.cel.interface import (
    CelCompileError,
    CelEvaluationError,
    CelType,
    Program,
)
from runtime.cel.projection import referenced_fields
from runtime.cel.reference import compile_reference

EngineName = Literal["cel-expr-python", "celpy"]
ENGINES: tuple[EngineName, ...] = ("cel-expr-python", "celpy")
DEFAULT_ENGINE: EngineName = "cel-expr-python"

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "CelCompileError",
    "CelEvaluationError",
    "CelType",
    "EngineName",
    "Program",
    "compile",
    "comprehension_depth",
]


def compile(
    expression: str,
    declarations: Mapping[str, CelType],
    result_type: CelType | None = None,
    engine: EngineName = DEFAULT_ENGINE,
    max_collection_items: int | None = None,
) -> Program:
    """Parses and checks `expression` once; raises `CelCompileError` with line and column.

    `declarations` names the variables the expression may use; `result_type` (if given) is what
    it must return: the fast engine checks it at compile time when it can, both at evaluation.
    With `max_collection_items`, an expression with comprehensions fails on any list or map
    it is handed that has more entries (runtime/cel/cost.py).
    """
    if engine == "celpy":
        program: Program = compile_reference(expression, declarations, result_type)
    else:
        program = compile_fast(expression, declarations, result_type)
    if max_collection_items is not None and comprehension_depth(expression):
        program = BoundedInputProgram(program, max_collection_items)
    projections = {
        name: fields
        for name, kind in declarations.items()
        if kind is CelType.MAP and (fields := referenced_fields(expression, name)) is not None
    }
    return ProjectedProgram(program, projections) if projections else program


class ProjectedProgram:
    """Hands each map variable over with only the fields the expression selects
    (runtime/cel/projection.py): the runtime converts every entry of a map it is given."""

    def __init__(self, program: Program, projections: Mapping[str, frozenset[str]]) -> None:
        self._program = program
        self._projections = tuple(projections.items())

    @property
    def expression(self) -> str:
        return self._program.expression

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        projected = dict(activation)
        for name, fields in self._projections:
            value = activation.get(name)
            if isinstance(value, Mapping):
                projected[name] = {key: value[key] for key in fields if key in value}
        return self._program.evaluate(projected)
