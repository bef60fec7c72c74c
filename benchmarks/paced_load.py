"""An open-loop load generator: requests leave on a fixed schedule, whatever the server does.

wrk (closed loop) waits for each answer before the next request, so a slow server slows the
load down and its stalls vanish from the figures (coordinated omission). Here request n is due
at start + n / rate, and its latency is counted from that moment, so time a request spends
waiting for a free connection counts against the server. Pure asyncio is plenty at ~1,000/s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PacedResult:
    sent: int
    ok: int
    seconds: float
    latencies_s: list[float]

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def open_loop(count: int, rate: float, fire: Callable[[int], Awaitable[bool]]) -> PacedResult:
    """Start `fire(n)` at start + n / rate for n < count; `fire` says whether it succeeded."""
    latencies: list[float] = []
    outcomes: list[bool] = []

    async def one(n: int, due: float) -> None:
        outcomes.append(await fire(n))
        latencies.append(time.perf_counter() - due)

    start = time.perf_counter()
    tasks = []
    for n in range(count):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    return PacedResult(count, sum(outcomes), time.perf_counter() - start, latencies)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> int:
        """Send one request and read its whole answer; returns the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status


async def paced_http(
    host: str, port: int, requests: Sequence[bytes], rate: float, seconds: float
) -> PacedResult:
    """POST `requests` open-loop over a pool of keep-alive connections that grows on demand."""
    idle: list[Connection] = []

    async def connect() -> Connection:
        return Connection(*await asyncio.open_connection(host, port))

    async def fire(n: int) -> bool:
        connection = idle.pop() if idle else await connect()
        try:
            status = await connection.exchange(requests[n])
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closes keep-alive connections left idle too long (uvicorn: 5 s);
            # such a request never reached it, so it goes again on a new connection.
            connection.writer.close()
            connection = await connect()
            status = await connection.exchange(requests[n])
        idle.append(connection)
        return 200 <= status < 300

    result = await open_loop(min(len(requests), int(rate * seconds)), rate, fire)
    for connection in idle:
        connection.writer.close()
    return result


def raw_post(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 request, ready to write to a keep-alive connection."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
