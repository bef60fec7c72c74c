"""A webhook target for the dispatch benchmarks: answers 204 at once and keeps statistics.

Run as its own process (`python benchmarks/dispatch_target.py PORT`) so that it does not share
an event loop with the client being measured. GET /stats returns the request count, the time of
the first and last request, and end-to-end latencies (receipt minus the CloudEvent's
`receivedat`, i.e. since ingest accepted the event) with each one's `receivedat`, when requests
carry one; GET /count only the count, the two times and the CPU time the target has used, so
that a benchmark can tell whether the target held the rate down.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime

import orjson
import uvloop
from aiohttp import web


class Stats:
    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.latencies_ms: list[float] = []
        # The `receivedat` of each latency's event, in the same order (epoch seconds), so a
        # benchmark can pick the events ingest accepted within a time window.
        self.accepted_at: list[float] = []
        # Event id -> receipt time, so a benchmark can split the latency by stage.
        self.received: dict[str, float] = {}

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        if self.count == 0:
            self.first = now
        self.count += 1
        self.last = now
        if b'"receivedat"' in body:
            event = orjson.loads(body)
            received = datetime.fromisoformat(event["receivedat"]).timestamp()
            self.latencies_ms.append((now - received) * 1000)
            self.accepted_at.append(received)
            self.received.setdefault(event["id"], now)
        return web.Response(status=204)

    async def report(self, _: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(
                {
                    "count": self.count,
                    "first": self.first,
                    "last": self.last,
                    "latencies_ms": self.latencies_ms,
                    "accepted_at": self.accepted_at,
                    "received": self.received,
                }
            ),
            content_type="application/json",
        )

    async def report_count(self, _: web.Request) -> web.Response:
        """The count and times alone: cheap enough to poll often during a measurement."""
        return web.Response(
            body=orjson.dumps(
                {
                    "count": self.count,
                    "first": self.first,
                    "last": self.last,
                    "cpu_s": time.process_time(),
                }
            ),
            content_type="application/json",
        )

    async def reset(self, _: web.Request) -> web.Response:
        self.count, self.first, self.last = 0, 0.0, 0.0
        self.latencies_ms.clear()
        self.accepted_at.clear()
        self.received.clear()
        return web.Response(status=204)


def main() -> None:
    stats = Stats()
    app = web.Application()
    app.router.add_get("/stats", stats.report)
    app.router.add_get("/count", stats.report_count)
    app.router.add_post("/reset", stats.reset)
    app.router.add_post("/{tail:.*}", stats.receive)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
