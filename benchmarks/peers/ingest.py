"""Ingest beside Benthos: signed Slack webhooks in, records acknowledged by the broker out.

Runs, in one go on this machine, each under the same load:
1. Benthos `http_server -> kafka_franz` verifying the Slack signature in bloblang and answering
   after the produce (the baseline), 401 to a forged signature;
2. the same Benthos storing every body unverified: its best case;
3. one `python -m ingest` process with one Slack trigger (benchmarks/ingest_throughput.py).

The load is benchmarks/ingest_throughput.py's: wrk -t2 -c64 replaying unique, pre-signed
requests through benchmarks/ingest_signed.lua, a warm-up, then `--duration` seconds measured.
Every producer writes with acks=all to a raw-events topic on the local broker under a
throwaway prefix. Ratios are to Benthos verifying, per second and per CPU-second of the server.

    python -m benchmarks.peers.ingest [--duration 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.ingest_load import Figures, ensure_wrk, full_load, signed_events
from benchmarks.ingest_throughput import SECRET, WARMUP_S, ingest_target, raw_topic_size
from benchmarks.peers.benthos import ensure_benthos, running_benthos
from benchmarks.peers.bloblang import SLACK_SECRET_VARIABLE
from benchmarks.peers.configs import ingest_config
from benchmarks.peers.report import load_averages, markdown_table, rate, ratio, share
from benchmarks.processor_drain import fresh_settings
from runtime.settings import Settings
from schemas.topics import RAW_EVENTS
from tests.integration.support.isolation import drop_topics
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port

# More events than any of the servers answers per second, so that no event is sent twice.
EVENTS_PER_S = 25_000


@dataclass(frozen=True)
class Run:
    name: str
    figures: Figures
    # The answer to one request whose signature is forged (None: the server does not verify).
    forged: int | None
    stored: int


async def forged_answer(url: str) -> int:
    event = signed_events(SECRET, 1)[0]
    headers = {**event.headers(), "X-Slack-Signature": "v0=" + "0" * 64}
    async with httpx.AsyncClient() as client:
        return (await client.post(url, content=event.body, headers=headers)).status_code


def measure(wrk: str, url: str, pid: int, options: argparse.Namespace, work: Path) -> Figures:
    load = {"connections": options.connections}
    warmup = signed_events(SECRET, WARMUP_S * EVENTS_PER_S)
    full_load(wrk, url, warmup, pid, work, seconds=WARMUP_S, **load)
    events = signed_events(SECRET, options.duration * EVENTS_PER_S)
    return full_load(wrk, url, events, pid, work, seconds=options.duration, **load)


async def benthos_run(
    binary: Path,
    base: Settings,
    wrk: str,
    options: argparse.Namespace,
    work: Path,
    *,
    verify: bool,
) -> Run:
    settings = await fresh_settings(base)
    port, ops_port = free_port(), free_port()
    config = ingest_config(
        brokers=settings.kafka.bootstrap_servers,
        topic=RAW_EVENTS.name(settings.topics.prefix),
        port=port,
        ops_port=ops_port,
        verify=verify,
    )
    name = "ingest-verifying" if verify else "ingest-unverified"
    try:
        env = {SLACK_SECRET_VARIABLE: SECRET}
        async with running_benthos(binary, config, work, name, env) as benthos:
            async with httpx.AsyncClient() as client:

                async def ready() -> bool | None:
                    try:
                        answer = await client.get(f"http://127.0.0.1:{ops_port}/ready")
                    except httpx.HTTPError:
                        return None
                    return answer.status_code == 200 or None

                await eventually(ready, timeout_s=30)
            url = f"http://127.0.0.1:{port}/webhooks/bench-trigger"
            forged = await forged_answer(url) if verify else None
            figures = await asyncio.to_thread(measure, wrk, url, benthos.pid, options, work)
        stored = await raw_topic_size(settings)
    finally:
        await drop_topics(settings)
    label = "verifying" if verify else "storing every body unverified (its best case)"
    return Run(f"Benthos http_server → kafka_franz, {label}", figures, forged, stored)


async def triggerline_run(base: Settings, wrk: str, options: argparse.Namespace, work: Path) -> Run:
    async with ingest_target(base, work) as (url, pid, settings):
        forged = await forged_answer(url)
        figures = await asyncio.to_thread(measure, wrk, url, pid, options, work)
        stored = await raw_topic_size(settings)
    return Run("Triggerline ingest (one process)", figures, forged, stored)


async def benchmark(options: argparse.Namespace, work: Path) -> None:
    wrk = ensure_wrk()
    base = Settings()
    binary = await asyncio.to_thread(ensure_benthos, base)
    before = load_averages()
    runs = [
        await benthos_run(binary, base, wrk, options, work, verify=True),
        await benthos_run(binary, base, wrk, options, work, verify=False),
        await triggerline_run(base, wrk, options, work),
    ]
    after = load_averages()
    baseline = runs[0].figures
    rows = [
        [
            run.name,
            rate(f.ok_per_s),
            f"{f.p50_ms:.1f} ms",
            f"{f.p99_ms:.1f} ms",
            share(f.server_cpu),
            rate(f.ok_per_s / f.server_cpu),
            ratio(f.ok_per_s, baseline.ok_per_s),
            ratio(f.ok_per_s / f.server_cpu, baseline.ok_per_s / baseline.server_cpu),
        ]
        for run in runs
        for f in [run.figures]
    ]
    print(
        f"ingest beside Benthos: {os.cpu_count()} CPUs, wrk -t2 -c{options.connections}, "
        f"{options.duration} s per run; load average {before} before, {after} after"
    )
    header = ["what", "2xx/s", "p50", "p99", "server CPU", "2xx per CPU-s"]
    header += ["of Benthos verifying", "per CPU-s, of Benthos verifying"]
    print(markdown_table(header, rows))
    for run in runs:
        forged = "not verified" if run.forged is None else f"answered {run.forged}"
        print(
            f"{run.name}: errors {run.figures.errors}, records on its topic {run.stored:,}, "
            f"a forged signature {forged}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=64)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="triggerline-peers-") as work:
        asyncio.run(benchmark(options, Path(work)))


if __name__ == "__main__":
    main()
