"""`python -m ingest`: serve webhooks and the control plane, and metrics on the ops port."""

from __future__ import annotations

import logging

import uvicorn

from ingest.app import create_app
from ingest.refusal_log import RefusalLog, UvicornRefusals
from ingest.request_bounds import request_bounds
from runtime.logging import configure_logging
from runtime.settings import get_settings
from runtime.tracing import tracing_from_env


def main() -> None:
    settings = get_settings()
    configure_logging("ingest", settings)
    # One refusal log for the app (forged signatures) and the connections (slow requests,
    # huge headers, floods).
    refusals = RefusalLog(settings.ingest.refusal_log_interval_s)
    logging.getLogger("uvicorn.error").addFilter(UvicornRefusals(refusals))
    uvicorn.run(
        create_app(settings, refusals, serve_ops=True, tracing=tracing_from_env("ingest")),
        host=settings.ingest.host,
        port=settings.ingest.port,
        http=request_bounds(settings, refusals),
        limit_concurrency=settings.ingest.max_connections,
        log_config=None,
        access_log=False,
        # Nothing reads the client address from the request scope, so X-Forwarded-For is
        # not rewritten into it, which saves a middleware layer on every request.
        proxy_headers=False,
        # uvicorn's graceful shutdown lets in-flight hand-offs finish before the producer stops.
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
