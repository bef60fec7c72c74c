"""The reference engine: celpy (cel-python), a pure-Python interpreter of the CEL spec.

celpy does not type-check, so type errors that the fast engine reports at compile time surface
here at evaluation time; both engines still reject the same expressions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, function_size

from runtime.cel.interface import CelCompileError, CelEvaluationError, CelType, check_result


class ReferenceProgram:
    def __init__(self, expression: str, runner: Any, result_type: CelType | None) -> None:
        self._expression = expression
        self._runner = runner
        self._result_type = result_type

    @property
    def expression(self) -> str:
        return self._expression

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        try:
            value = self._runner.evaluate(
                {name: json_to_cel(item) for name, item in activation.items()}
            )
        except CELEvalError as exc:
            raise CelEvaluationError(_eval_message(exc)) from None
        except Exception as exc:
            raise CelEvaluationError(str(exc)) from None
        # celpy hands some errors back as values instead of raising them.
        if isinstance(value, CELEvalError):
            raise CelEvaluationError(_eval_message(value))
        return check_result(_plain(value), self._result_type)


def compile_reference(
    expression: str, declarations: Mapping[str, CelType], result_type: CelType | None
) -> ReferenceProgram:
    env = celpy.Environment()
    try:
        ast = env.compile(expression)
    except CELParseError as exc:
        raise _parse_error(expression, exc) from None
    return ReferenceProgram(expression, env.program(ast, functions=_SPEC_FIXES), result_type)


def _size(value: Any) -> Any:
    # celpy answers size(null) with 0; the CEL spec (and the fast engine) have no such overload.
    if value is None:
        raise TypeError("no matching overload for size(null)")
    return function_size(value)


_SPEC_FIXES = {"size": _size}


def _parse_error(expression: str, exc: Exception) -> CelCompileError:
    cause = exc.__context__
    token = getattr(cause, "token", None)
    if getattr(token, "type", None) == "$END":
        # celpy points at the last token; the problem is what is missing after it.
        lines = expression.split("\n")
        return CelCompileError("unexpected end of expression", len(lines), len(lines[-1]) + 1)
    message = f"unexpected {str(token)!r}" if token is not None else "unexpected character"
    return CelCompileError(
        message, int(getattr(exc, "line", None) or 1), int(getattr(exc, "column", None) or 1)
    )


def _eval_message(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


# celpy's scalar types subclass Python's; BoolType subclasses int, so it comes first.
_SCALARS: tuple[tuple[type, Any], ...] = (
    (celtypes.BoolType, bool),
    (datetime, lambda v: datetime.fromtimestamp(v.timestamp(), v.tzinfo)),
    (timedelta, lambda v: timedelta(seconds=v.total_seconds())),
    (int, int),
    (float, float),
    (str, str),
    (bytes, bytes),
)


def _plain(value: Any) -> Any:
    """celpy's own types as plain Python values. celpy keeps an error met while building a list
    or map as an item of it; that is an evaluation error like a top-level one."""
    if isinstance(value, CELEvalError):
        raise CelEvaluationError(_eval_message(value))
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    for celpy_type, convert in _SCALARS:
        if isinstance(value, celpy_type):
            return convert(value)
    return value
