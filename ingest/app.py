"""The ingest service: webhook ingress, the outbox relay, replays, and operational endpoints.

The public port answers webhooks, the control plane, the web console (`/console`), and
`/healthz` and `/readyz` for load balancers. Metrics are on the ops port (TRIGGERLINE_OPS_HOST,
TRIGGERLINE_INGEST_METRICS_PORT), and the OpenAPI schema is not served at all (`python -m
ingest.openapi` prints it): neither is for the internet.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ingest.api import mount_control_plane
from ingest.api.database import registry_pool
from ingest.console import mount_console
from ingest.console.session import SessionCodec
from ingest.cron.producer import CronProducer
from ingest.handoff import RAW_PRODUCER_OPTIONS, RawEventWriter
from ingest.rate_limit import RateLimit
from ingest.refusal_log import RefusalLog
from ingest.registry.outbox_backlog import OutboxBacklogGauge
from ingest.registry.relay import OutboxRelay
from ingest.replay.worker import ReplayWorker
from ingest.triggers import compile_ingress_trigger
from ingest.webhook_route import IngestApp
from ingest.webhooks import WebhookIngress
from runtime.config_view import TriggerConfigView
from runtime.kafka import durable_producer
from runtime.ops_server import OpsServer
from runtime.secrets import Keyring
from runtime.settings import Settings
from runtime.tracing import Tracing

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(
    settings: Settings,
    refusals: RefusalLog | None = None,
    serve_ops: bool = False,
    tracing: Tracing | None = None,
) -> FastAPI:
    """Ingest's app. `serve_ops` starts the ops port with it, which only the process does:
    an app driven in-process (tests) must not take a fixed port. With `tracing`, every
    accepted webhook's raw record starts (or continues) a trace."""
    refusals = refusals or RefusalLog(settings.ingest.refusal_log_interval_s)
    keyring = Keyring.from_setting(settings.secret_keys)
    console_sessions = SessionCodec.from_settings(
        settings.secret_keys, settings.console.session_ttl_s
    )
    default_rate_limit = RateLimit(
        settings.ingest.rate_limit_per_s, settings.ingest.rate_limit_burst
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = durable_producer(settings, **RAW_PRODUCER_OPTIONS)
        view = TriggerConfigView(
            settings,
            "ingest",
            partial(
                compile_ingress_trigger, keyring=keyring, default_rate_limit=default_rate_limit
            ),
        )
        relay = OutboxRelay(settings, producer)
        registry = registry_pool(settings)
        app.state.registry_pool = registry
        app.state.keyring = keyring
        app.state.console_sessions = console_sessions
        app.state.settings = settings
        app.state.trigger_view = view
        app.state.raw_writer = RawEventWriter(settings, producer, tracing)
        app.state.webhooks = WebhookIngress(view, app.state.raw_writer, settings, refusals)
        app.state.producer_started = False
        ops = OpsServer(
            settings.ops_host,
            settings.ingest.metrics_port,
            lambda: {"kafka_producer": app.state.producer_started, "trigger_config": view.ready},
            view.problems,
        )
        if serve_ops:
            await ops.start()
        await producer.start()
        app.state.producer_started = True
        await view.start()
        await registry.open()
        # Everything loaded so far lives as long as the process; frozen, it is left out of
        # full collections, which otherwise stalled every request for ~100 ms now and then.
        gc.freeze()
        background = [
            asyncio.create_task(relay.run(), name="outbox-relay"),
            asyncio.create_task(OutboxBacklogGauge(settings).run(), name="outbox-backlog"),
            asyncio.create_task(ReplayWorker(settings, registry).run(), name="replays"),
        ]
        if settings.cron.enabled:
            background.append(asyncio.create_task(CronProducer(settings).run(), name="cron"))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await registry.close()
            await view.stop()
            await producer.stop()
            await ops.stop()

    return ingest_app(lifespan)


def ingest_app(lifespan: Lifespan | None = None) -> FastAPI:
    """Ingest's routes; what they use (`app.state`) comes with the lifespan."""
    # POST /webhooks/{trigger_id} is answered ahead of FastAPI (ingest/webhook_route.py).
    app = IngestApp(
        title="Triggerline",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    mount_control_plane(app)
    mount_console(app)

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def ready(request: Request) -> JSONResponse:
        checks = {
            "kafka_producer": bool(request.app.state.producer_started)
            and await request.app.state.raw_writer.connected(),
            "trigger_config": request.app.state.trigger_view.ready,
        }
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    return app
