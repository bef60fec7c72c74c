"""Small request-scoped helpers shared by the control-plane routers."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from ingest.api.errors import ErrorBody
from ingest.registry.errors import NotFound
from ingest.registry.service import ControlPlane
from runtime.ids import canonical_id
from runtime.secrets import Keyring
from runtime.settings import Settings


def keyring_of(request: Request) -> Keyring:
    keyring: Keyring = request.app.state.keyring
    return keyring


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def control_plane_of(request: Request) -> ControlPlane:
    return ControlPlane.from_settings(settings_of(request), keyring_of(request))


def resource_id(value: str, what: str) -> str:
    """A path's id in its canonical form; 404 for anything that is not a UUID."""
    canonical = canonical_id(value)
    if canonical is None:
        raise NotFound(what)
    return canonical


def documented_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give."""
    meaning = {
        400: "Malformed request",
        401: "Missing or invalid API key",
        404: "Unknown or deleted resource (or another project's)",
        409: "Name already taken, or resource in use",
        413: "Request body, or the trigger's config record, over its bound",
        422: "Invalid field; `errors` lists each field path and what is wrong",
        503: "Registry database unavailable; retry later",
    }
    return {
        status: {"model": ErrorBody, "description": meaning[status]}
        for status in (400, 401, 503, *statuses)
    }
