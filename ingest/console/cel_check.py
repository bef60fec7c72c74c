"""`POST /console/cel-check`: compile a filter or transform as you type, exactly as saving it
would (the same pydantic types from `kinds.config` that the registry's inputs use), and say
where it is wrong.

JSON in (`{"expression", "kind": "filter" | "transform"}`), JSON out: `{"ok": true}` or
`{"ok": false, "line", "column", "message"}` (line and column are null for a problem of the
whole expression, such as nested comprehensions). The CSRF token comes in the `X-CSRF-Token`
header: the endpoint changes nothing, but compiling costs CPU, so only the console may ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from ingest.api.dependencies import settings_of
from ingest.console.security import PREFIX, read_json
from ingest.console.web import CsrfRefused, SignedIn
from kinds.config import CEL_DECLARATIONS, BoolExpression, PayloadExpression
from runtime.cel import CelCompileError, CelType, compile

router = APIRouter(prefix=PREFIX, include_in_schema=False)
CSRF_HEADER = "x-csrf-token"

ExpressionKind = Literal["filter", "transform"]
_CHECKS: dict[str, tuple[TypeAdapter[str], CelType]] = {
    "filter": (TypeAdapter(BoolExpression), CelType.BOOL),
    "transform": (TypeAdapter(PayloadExpression), CelType.PAYLOAD),
}


@dataclass(frozen=True, slots=True)
class CelProblem:
    message: str
    line: int | None = None
    column: int | None = None


def cel_problem(source: str, kind: str) -> CelProblem | None:
    """What saving `source` as a `kind` expression would refuse; None if it would be saved."""
    adapter, result_type = _CHECKS[kind]
    try:
        adapter.validate_python(source)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "cel_invalid":
            # Compiled again for the position as numbers; the message above carries it as text.
            try:
                compile(source, CEL_DECLARATIONS, result_type)
            except CelCompileError as exc:
                return CelProblem(exc.message, exc.line, exc.column)
        return CelProblem(first["msg"])
    return None


@router.post("/cel-check")
async def cel_check(request: Request, operator: SignedIn) -> JSONResponse:
    if not operator.session.csrf_matches(request.headers.get(CSRF_HEADER)):
        raise CsrfRefused
    body = await read_json(request, settings_of(request).registry.api_max_body_bytes)
    try:
        given: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _refused("send a JSON object")
    if not isinstance(given, dict):
        return _refused("send a JSON object")
    expression, kind = given.get("expression"), given.get("kind")
    if not isinstance(expression, str):
        return _refused("expression: a string of CEL")
    if kind not in _CHECKS:
        return _refused('kind: "filter" or "transform"')
    problem = cel_problem(expression, kind)
    if problem is None:
        return JSONResponse({"ok": True})
    return JSONResponse(
        {"ok": False, "line": problem.line, "column": problem.column, "message": problem.message}
    )


def _refused(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=422)
