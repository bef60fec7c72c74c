"""Health, readiness and Prometheus endpoints for the stages that serve no HTTP of their own.

Ingest exposes the same paths from its FastAPI app; processors and dispatchers start this small
server next to their Kafka loops.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadinessCheck = Callable[[], dict[str, bool]]
# Problems that make the process unready however its checks stand, each named for an operator
# (e.g. trigger configs it cannot decrypt).
ProblemsCheck = Callable[[], list[str]]


class OpsServer:
    def __init__(
        self,
        host: str,
        port: int,
        readiness: ReadinessCheck,
        problems: ProblemsCheck = list,
    ) -> None:
        self._host = host
        self._port = port
        self._readiness = readiness
        self._problems = problems
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        """The routes the ops port serves; deployments' probes and scrapers name these paths."""
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _ready(self, _: web.Request) -> web.Response:
        checks = self._readiness()
        problems = self._problems()
        ready = all(checks.values()) and not problems
        return web.json_response(
            {"status": "ready" if ready else "not_ready", "checks": checks, "problems": problems},
            status=200 if ready else 503,
        )

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
