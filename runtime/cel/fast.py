"""The fast engine: cel-expr-python, Google's C++ CEL runtime, which type-checks at compile time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cel_expr_python import cel

from runtime.cel.interface import (
    CelCompileError,
    CelEvaluationError,
    CelType,
    check_result,
)

_DYN = cel.Type.DYN
_TYPES: dict[CelType, cel.Type] = {
    CelType.BOOL: cel.Type.BOOL,
    CelType.INT: cel.Type.INT,
    CelType.DOUBLE: cel.Type.DOUBLE,
    CelType.STRING: cel.Type.STRING,
    CelType.TIMESTAMP: cel.Type.TIMESTAMP,
    CelType.DURATION: cel.Type.DURATION,
    CelType.LIST: cel.Type.List(_DYN),
    CelType.MAP: cel.Type.Map(cel.Type.STRING, _DYN),
    CelType.DYN: _DYN,
}
# A payload's element types do not matter: a map<string, int> is as good as a map<string, dyn>.
_PAYLOAD_KINDS = ("MAP<", "LIST<", "STRING")

# "INVALID_ARGUMENT: ERROR: <input>:1:12: Syntax error: mismatched input ..."
_POSITIONED = re.compile(r"<input>:(\d+):(\d+): (.*)")
# The runtime prefixes messages with a status code name ("NOT_FOUND: ...").
_STATUS_PREFIX = re.compile(r"^[A-Z_]+: ")


class FastProgram:
    def __init__(
        self, expression: str, compiled: cel.Expression, result_type: CelType | None
    ) -> None:
        self._expression = expression
        self._compiled = compiled
        # A statically typed result was checked at compile time; only dyn needs a run-time check.
        self._check = result_type if compiled.return_type() == _DYN else None

    @property
    def expression(self) -> str:
        return self._expression

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        try:
            value = self._compiled.eval(data=activation)
        except Exception as exc:
            # Values the runtime cannot represent (e.g. a Python object in the activation).
            raise CelEvaluationError(_STATUS_PREFIX.sub("", str(exc))) from None
        # Missing keys and overload failures come back as ERROR-typed values, not exceptions.
        if value.type() == cel.Type.ERROR:
            raise CelEvaluationError(_STATUS_PREFIX.sub("", str(value.value())))
        return check_result(value.plain_value(), self._check)


def compile_fast(
    expression: str, declarations: Mapping[str, CelType], result_type: CelType | None
) -> FastProgram:
    env = cel.NewEnv(variables={name: _TYPES[kind] for name, kind in declarations.items()})
    try:
        compiled = env.compile(expression)
    except RuntimeError as exc:
        raise _compile_error(str(exc)) from None
    if result_type is not None and result_type is not CelType.DYN:
        returned = compiled.return_type()
        if result_type is CelType.PAYLOAD:
            accepted = returned.name().startswith(_PAYLOAD_KINDS)
        else:
            accepted = _TYPES[result_type].is_assignable_from(returned)
        if returned != _DYN and not accepted:
            raise CelCompileError(
                f"expression returns {returned.name().lower()}, expected {result_type.value}",
                1,
                1,
            )
    return FastProgram(expression, compiled, result_type)


def _compile_error(text: str) -> CelCompileError:
    match = _POSITIONED.search(text)
    if match is None:
        return CelCompileError(_STATUS_PREFIX.sub("", text.splitlines()[0]), 1, 1)
    line, column, message = match.groups()
    return CelCompileError(message.strip(), int(line), int(column))
