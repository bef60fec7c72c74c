"""What every CEL engine offers Triggerline: compile once, evaluate many times.

Activations and results are plain JSON-like Python values (dict, list, str, int, float, bool,
None); results may also be `datetime` (CEL timestamps) and `timedelta` (CEL durations). Errors
are two exceptions with messages written for the person who wrote the expression.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol


class CelType(enum.Enum):
    """The types a variable or a result can be declared with."""

    BOOL = "bool"
    INT = "int"
    DOUBLE = "double"
    STRING = "string"
    TIMESTAMP = "timestamp"
    DURATION = "duration"
    # list(dyn) and map(string, dyn): the shapes of JSON arrays and objects.
    LIST = "list"
    MAP = "map"
    DYN = "dyn"
    # A result only: a map, a list or a string (what a transform may make a CloudEvent's data).
    PAYLOAD = "map, list or string"


class CelCompileError(ValueError):
    """The expression is not valid CEL, or not valid for the declared variables and result.

    `line` and `column` are 1-based and point at the offending token (or just past the end of
    the expression when it ended too early).
    """

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class CelEvaluationError(ValueError):
    """The expression failed on this activation: a missing field, a type mismatch..."""


class Program(Protocol):
    """A compiled expression. Evaluate it as often as needed; it holds no per-call state."""

    @property
    def expression(self) -> str: ...

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """The expression's value; `CelEvaluationError` when it fails or has the wrong type."""
        ...


def type_name(value: Any) -> str:
    """A CEL-flavoured name for a Python result, for "expected bool, got ..." messages."""
    names: dict[type, str] = {
        bool: "bool",
        int: "int",
        float: "double",
        str: "string",
        bytes: "bytes",
        list: "list",
        dict: "map",
        datetime: "timestamp",
        timedelta: "duration",
        type(None): "null",
    }
    for python_type, name in names.items():
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def check_result(value: Any, result_type: CelType | None) -> Any:
    """Checks a result against the declared result type at run time (for `dyn` results)."""
    if result_type is None or result_type is CelType.DYN:
        return value
    if result_type is CelType.PAYLOAD:
        if isinstance(value, dict | list | str):
            return value
        raise CelEvaluationError(f"expected a map, list or string result, got {type_name(value)}")
    expected = {
        CelType.BOOL: bool,
        CelType.INT: int,
        CelType.DOUBLE: float,
        CelType.STRING: str,
        CelType.LIST: list,
        CelType.MAP: dict,
        CelType.TIMESTAMP: datetime,
        CelType.DURATION: timedelta,
    }[result_type]
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise CelEvaluationError(f"expected a {result_type.value} result, got {type_name(value)}")
