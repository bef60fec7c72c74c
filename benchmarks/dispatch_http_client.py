"""CPU per request of the dispatchers' HTTP client against aiohttp's, on the same target.

Both POST the same signed-delivery-sized body with the same headers to
benchmarks/dispatch_target.py (its own process, answering 204 at once), with 128 requests in
flight over kept-alive connections, in this one process; each run reports requests/s and this
process's CPU time per request. aiohttp (the baseline) is used as the dispatchers used it: one
session, a total timeout, redirects off, at most 64 KiB of each answer read. Runs alternate,
twice each.

    .venv/bin/python -m benchmarks.dispatch_http_client [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import aiohttp
import uvloop

from benchmarks.dispatch_throughput import target_process
from dispatchers.http_client import HttpClient, prepared

CONCURRENCY = 128
BODY = b'{"specversion":"1.0","data":{"text":"' + b"x" * 400 + b'"}}'
HEADERS = [
    ("webhook-id", "0f3c9a6e2b7d4c1a8e5f6a7b8c9d0e1f"),
    ("webhook-timestamp", "1700000000"),
    ("webhook-signature", "v1," + "A" * 44),
    ("content-type", "application/cloudevents+json"),
]
READ_LIMIT = 64 * 1024


async def measure(requests: int, post: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(requests/s, CPU µs per request) of `requests` calls, CONCURRENCY at a time."""
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            await post()

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    cpu, seconds = time.process_time() - cpu, time.perf_counter() - started
    return requests / seconds, cpu / requests * 1e6


async def benchmark(requests: int) -> None:
    async with target_process() as base:
        url = f"{base}/hook"
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONCURRENCY), auto_decompress=False
        )
        timeout = aiohttp.ClientTimeout(total=5)
        client = HttpClient(max_connections=CONCURRENCY, guard=False)
        target = prepared(url)

        async def with_aiohttp() -> None:
            async with session.post(
                url, data=BODY, headers=dict(HEADERS), allow_redirects=False, timeout=timeout
            ) as response:
                await response.content.read(READ_LIMIT)

        async def with_own_client() -> None:
            await client.post(target, HEADERS, BODY, timeout_s=5, body_limit=READ_LIMIT)

        load = os.getloadavg()[0]
        try:
            for _ in range(2):
                for name, post in (("aiohttp", with_aiohttp), ("dispatchers", with_own_client)):
                    per_s, cpu_us = await measure(requests, post)
                    print(f"{name:12} {per_s:8,.0f} requests/s  {cpu_us:5.1f} µs CPU a request")
        finally:
            await session.close()
            await client.close()
        print(f"{os.cpu_count()} CPUs, load average {load:.2f} before")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    uvloop.run(benchmark(parser.parse_args().requests))


if __name__ == "__main__":
    main()
