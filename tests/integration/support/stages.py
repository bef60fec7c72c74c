"""Runs Triggerline's stages as real processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from runtime.settings import IngestSettings, Settings
from tests.integration.support.polling import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def with_free_ports(settings: Settings) -> Settings:
    """`settings` with each stage's HTTP port on a free one, so that concurrent tests (and a
    local `triggerline run`) never share a port."""
    return settings.override(
        ingest__port=free_port(),
        ingest__metrics_port=free_port(),
        cron__metrics_port=free_port(),
        processor__metrics_port=free_port(),
        dispatcher__metrics_port=free_port(),
        sink__metrics_port=free_port(),
    )


DEFAULT_INGEST_OPS_PORT = IngestSettings.model_fields["metrics_port"].default


def ingest_ops_port(settings: Settings) -> int:
    """The ops port a test chose for ingest, or else a free one: concurrent tests (and a local
    `triggerline run`) must never share the default."""
    chosen = settings.ingest.metrics_port
    return free_port() if chosen == DEFAULT_INGEST_OPS_PORT else chosen


def stage_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "DATABASE_URL": settings.database.url.get_secret_value(),
        "TRIGGERLINE_TOPIC_PREFIX": settings.topics.prefix,
        "TRIGGERLINE_SECRET_KEYS": settings.secret_keys.get_secret_value(),
        "TRIGGERLINE_LOCAL_DIR": str(settings.local_dir),
        "TRIGGERLINE_INGEST_PORT": str(settings.ingest.port),
        "TRIGGERLINE_INGEST_MAX_BODY_BYTES": str(settings.ingest.max_body_bytes),
        "TRIGGERLINE_INGEST_METRICS_PORT": str(ingest_ops_port(settings)),
        "TRIGGERLINE_INGEST_MAX_EVENT_ID_LENGTH": str(settings.ingest.max_event_id_length),
        "TRIGGERLINE_INGEST_MAX_CONNECTIONS": str(settings.ingest.max_connections),
        "TRIGGERLINE_INGEST_HEADER_READ_TIMEOUT_S": str(settings.ingest.header_read_timeout_s),
        "TRIGGERLINE_INGEST_BODY_READ_TIMEOUT_S": str(settings.ingest.body_read_timeout_s),
        "TRIGGERLINE_INGEST_MAX_HEADER_BYTES": str(settings.ingest.max_header_bytes),
        "TRIGGERLINE_CRON_METRICS_PORT": str(settings.cron.metrics_port),
        "TRIGGERLINE_PROCESSOR_METRICS_PORT": str(settings.processor.metrics_port),
        "TRIGGERLINE_DISPATCHER_METRICS_PORT": str(settings.dispatcher.metrics_port),
        "TRIGGERLINE_SINK_METRICS_PORT": str(settings.sink.metrics_port),
        "TRIGGERLINE_REPLAY_LEASE_S": str(settings.replay.lease_s),
        "TRIGGERLINE_REPLAY_POLL_INTERVAL_S": str(settings.replay.poll_interval_s),
    }


@contextmanager
def running_stages(settings: Settings, *stages: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = stage_env(settings)
    processes = [subprocess.Popen([sys.executable, "-m", stage], env=env) for stage in stages]
    try:
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_until_ready(url: str, timeout_s: float = 60.0) -> None:
    async with httpx.AsyncClient() as client:

        async def ready() -> bool | None:
            try:
                return True if (await client.get(url, timeout=1.0)).status_code == 200 else None
            except httpx.HTTPError:
                return None

        await eventually(ready, timeout_s)
