"""Error answers of the control-plane API.

Every error is `{"error": message}`, plus `"errors": [{"path", "message"}]` for invalid fields.
Messages never carry the submitted values, so a secret sent in the wrong place is not echoed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import OperationalError
from psycopg_pool import PoolTimeout
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from ingest.registry.errors import FieldError, Invalid, RegistryError
from ingest.registry.validation import path_of

log = logging.getLogger("triggerline.api")

# Pydantic error types that, for the body as a whole, mean the request could not be read at all,
# rather than that a field holds a value we refuse.
MALFORMED_BODY = frozenset({"model_attributes_type", "dict_type", "missing"})


class ApiError(RegistryError):
    """A refusal of the API itself (authentication, a malformed request, the database down),
    whose status is chosen where it is raised."""

    def __init__(self, status: int, message: str, errors: Iterable[FieldError] = ()) -> None:
        super().__init__(message, errors)
        self.status = status


class ErrorBody(BaseModel):
    """Documents the error shape in OpenAPI."""

    error: str
    errors: list[dict[str, str]] = []


def error_response(error: RegistryError) -> JSONResponse:
    body: dict[str, Any] = {"error": error.message}
    if error.errors:
        body["errors"] = [{"path": e.path, "message": e.message} for e in error.errors]
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(body, status_code=error.status, headers=headers)


def _malformed(error: Any) -> bool:
    return bool(
        error["type"] == "json_invalid"
        or (error["type"] in MALFORMED_BODY and tuple(error["loc"]) == ("body",))
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RegistryError)
    async def on_refusal(request: Request, exc: RegistryError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # Framework-raised errors (unreadable body, unknown path, wrong method) in our shape.
        response = error_response(ApiError(exc.status_code, str(exc.detail)))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(_malformed(error) for error in errors):
            return error_response(ApiError(400, "malformed request: send a JSON object"))
        located = [FieldError(path_of(e["loc"]), e["msg"]) for e in errors]
        if any(error["loc"][0] != "body" for error in errors):
            return error_response(ApiError(400, "malformed request", located))
        return error_response(Invalid(located))

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def on_database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("registry database unavailable", extra={"error": str(exc)})
        return error_response(ApiError(503, "registry database unavailable; retry later"))
