"""Triggerline's CEL engine interface, shared by the processors and the registry's validation.

    program = compile('event.text.contains("deploy")', {"event": CelType.MAP}, CelType.BOOL)
    program.evaluate({"event": {"text": "deploy now"}})  # True

Two engines sit behind it: `cel-expr-python` (Google's C++ runtime; type-checks at compile time)
and `celpy` (pure Python, the reference). The default is the fast one, chosen by
`benchmarks/processor_cel_engines.py`; both run the same differential test cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from runtime.cel.fast import compile_fast
from runtime.cel.interface import (
    CelCompileError,
    CelEvaluationError,
    CelType,
    Program,
)
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
]


def compile(
    expression: str,
    declarations: Mapping[str, CelType],
    result_type: CelType | None = None,
    engine: EngineName = DEFAULT_ENGINE,
) -> Program:
    """Parses and checks `expression` once; raises `CelCompileError` with line and column.

    `declarations` names the variables the expression may use; `result_type` (if given) is what
    it must return: the fast engine checks it at compile time when it can, both at evaluation.
    """
    if engine == "celpy":
        return compile_reference(expression, declarations, result_type)
    return compile_fast(expression, declarations, result_type)
