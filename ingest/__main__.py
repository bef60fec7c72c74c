"""`python -m ingest`: serve webhooks and the control plane, and metrics on the ops port."""

from __future__ import annotations

import uvicorn

from ingest.app import create_app
from runtime.logging import configure_logging
from runtime.settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging("ingest", settings.log_level)
    uvicorn.run(
        create_app(settings, serve_ops=True),
        host=settings.ingest_host,
        port=settings.ingest_port,
        log_config=None,
        access_log=False,
        # uvicorn's graceful shutdown lets in-flight hand-offs finish before the producer stops.
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
