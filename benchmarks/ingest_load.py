"""Load for the ingest benchmark: signed Slack events, wrk at full load, paced load, figures."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from slack_sdk.signature import SignatureVerifier

from benchmarks.paced_load import PacedResult, open_loop, paced_http, raw_post
from ingest.handoff import RAW_PRODUCER_OPTIONS
from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.topics import RAW_EVENTS

LUA = Path(__file__).resolve().parent / "ingest_signed.lua"


@dataclass(frozen=True)
class SignedEvent:
    timestamp: str
    signature: str
    body: bytes

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": self.timestamp,
            "X-Slack-Signature": self.signature,
        }


@dataclass(frozen=True)
class Figures:
    ok_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU time per second of wall time: 1.0 is one core fully busy.
    server_cpu: float
    load_generator_cpu: float

    def row(self, name: str) -> str:
        return (
            f"{name:<34} {self.ok_per_s:>9,.0f} {self.p50_ms:>8.2f} {self.p99_ms:>8.2f}"
            f" {self.errors:>7} {self.server_cpu:>7.0%} {self.load_generator_cpu:>9.0%}"
        )


HEADER = (
    f"{'':<34} {'2xx/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'server':>7} {'load gen':>9}"
)


def signed_events(secret: str, count: int) -> list[SignedEvent]:
    """`count` unique Slack events, signed now with slack_sdk (valid for five minutes)."""
    signer = SignatureVerifier(secret)
    timestamp = str(int(time.time()))
    run = uuid.uuid4().hex[:8]
    events = []
    for n in range(count):
        body = orjson.dumps(
            {
                "type": "event_callback",
                "team_id": "T0BENCH",
                "api_app_id": "A0BENCH",
                "event_id": f"Ev{run}{n:09d}",
                "event_time": int(timestamp),
                "event": {
                    "type": "message",
                    "channel": "C0BENCH",
                    "user": "U0BENCH",
                    "text": f"benchmark message {n}",
                    "ts": f"{timestamp}.{n:06d}",
                },
            }
        )
        signature = str(signer.generate_signature(timestamp=timestamp, body=body))
        events.append(SignedEvent(timestamp, signature, body))
    return events


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        print("installing wrk (apt-get install -y wrk)", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
        path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rusage_cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def full_load(
    wrk: str,
    url: str,
    events: list[SignedEvent],
    server_pid: int,
    work: Path,
    *,
    seconds: int,
    connections: int,
    threads: int = 2,
) -> Figures:
    """wrk as fast as the server answers, cycling through the pre-signed events."""
    requests_file = work / f"signed-{uuid.uuid4().hex[:8]}.tsv"
    with requests_file.open("w") as out:
        for event in events:
            out.write(f"{event.timestamp}\t{event.signature}\t{event.body.decode()}\n")
    server_before = cpu_seconds(server_pid)
    wrk_before = _rusage_cpu(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [
            *(wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"),
            *("-s", str(LUA), url, "--", str(requests_file), str(threads)),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    summary = orjson.loads(completed.stdout.strip().splitlines()[-1])
    elapsed = summary["duration_us"] / 1e6
    return Figures(
        ok_per_s=(summary["requests"] - summary["non_2xx"]) / elapsed,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=summary["non_2xx"] + summary["socket_errors"] + summary["timeouts"],
        server_cpu=(cpu_seconds(server_pid) - server_before) / elapsed,
        load_generator_cpu=(_rusage_cpu(resource.RUSAGE_CHILDREN) - wrk_before) / elapsed,
    )


async def fixed_rate(
    url: str, events: list[SignedEvent], server_pid: int, *, rate: float, seconds: float
) -> Figures:
    """Open-loop load at `rate` requests/s from this process (benchmarks/paced_load.py)."""
    parts = urlsplit(url)
    host, port = str(parts.hostname), int(parts.port or 80)
    requests = [raw_post(host, port, parts.path, e.headers(), e.body) for e in events]
    server_before = cpu_seconds(server_pid)
    own_before = _rusage_cpu(resource.RUSAGE_SELF)
    result = await paced_http(host, port, requests, rate, seconds)
    return _paced_figures(
        result,
        cpu_seconds(server_pid) - server_before,
        _rusage_cpu(resource.RUSAGE_SELF) - own_before,
    )


def _paced_figures(result: PacedResult, server_cpu_s: float, own_cpu_s: float) -> Figures:
    return Figures(
        ok_per_s=result.ok / result.seconds,
        p50_ms=result.percentile_ms(50),
        p99_ms=result.percentile_ms(99),
        errors=result.sent - result.ok,
        server_cpu=server_cpu_s / result.seconds,
        load_generator_cpu=own_cpu_s / result.seconds,
    )


async def kafka_alone(settings: Settings, record: bytes, *, rate: float, seconds: float) -> Figures:
    """The floor under ingest's latency: ingest's producer settings, raw-event-sized records,
    the same open-loop schedule, and no HTTP in front."""
    producer = durable_producer(settings, **RAW_PRODUCER_OPTIONS)
    await producer.start()
    topic = RAW_EVENTS.name(settings.topics.prefix)

    async def fire(n: int) -> bool:
        await producer.send_and_wait(topic, record, key=b"kafka-alone")
        return True

    own_before = _rusage_cpu(resource.RUSAGE_SELF)
    try:
        result = await open_loop(int(rate * seconds), rate, fire)
    finally:
        await producer.stop()
    return _paced_figures(result, 0.0, (_rusage_cpu(resource.RUSAGE_SELF) - own_before))
