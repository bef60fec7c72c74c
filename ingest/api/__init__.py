"""The control-plane API: project-scoped routes over the trigger registry in PostgreSQL."""

from __future__ import annotations

from fastapi import FastAPI

from ingest.api import (
    api_keys,
    definitions,
    deliveries,
    destinations,
    environments,
    filter_preview,
    replays,
    triggers,
)
from ingest.api.errors import install_error_handlers
from ingest.api.gate import ControlPlaneGate


def mount_control_plane(app: FastAPI) -> None:
    """Add the control-plane routes and their error handling to the ingest app.

    The routes expect `app.state.registry_pool` (see `ingest.api.database.registry_pool`) and
    `app.state.keyring` and `app.state.settings`.
    """
    app.add_middleware(ControlPlaneGate)
    install_error_handlers(app)
    for module in (
        definitions,
        triggers,
        destinations,
        filter_preview,
        environments,
        deliveries,
        api_keys,
        replays,
    ):
        app.include_router(module.router)
