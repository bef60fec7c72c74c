"""Each stage, started as its Kubernetes Deployment starts it (the command, the image's
environment, the ConfigMap, the pod's env), answers the manifest's probes on the manifest's
paths, from an address other than 127.0.0.1: what the kubelet and Prometheus will ask of it.

The stages get this test's Kafka, database, keys and topic prefix, and free ports in place of
the manifest's fixed ones (which a local `triggerline run` may hold); a probe of the manifest's
port goes to the port the stage took for the same setting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.settings import Settings
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port
from tests.support.deployment import (
    SETTINGS_PREFIXES,
    STAGES,
    container_environment,
    deployments,
    only_container,
    settings_under,
)

pytestmark = pytest.mark.integration

# A loopback address a server bound to 127.0.0.1 does not answer: reaching a stage here shows
# it listens on the pod's address, not only on its own loopback.
PROBE_HOST = "127.0.0.2"
PORT_VARIABLES = (
    "TRIGGERLINE_INGEST_PORT",
    "TRIGGERLINE_INGEST_METRICS_PORT",
    "TRIGGERLINE_PROCESSOR_METRICS_PORT",
    "TRIGGERLINE_DISPATCHER_METRICS_PORT",
    "TRIGGERLINE_SINK_METRICS_PORT",
    "TRIGGERLINE_CRON_METRICS_PORT",
)


def stage_ports(component: str, settings: Settings) -> list[int]:
    stage = STAGES[component]
    public = [] if stage.public_port is None else [stage.public_port(settings)]
    return [stage.ops_port(settings), *public]


def as_deployed(
    component: str, settings: Settings, local_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, str], dict[int, int]]:
    """The stage's environment as its pod has it, with this test's services and free ports;
    and where each of the manifest's ports went."""
    container_env = container_environment(only_container(deployments()[component]))
    manifest = settings_under(container_env, monkeypatch)
    env = {
        name: value for name, value in container_env.items() if name.startswith(SETTINGS_PREFIXES)
    }
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "DATABASE_URL": settings.database.url.get_secret_value(),
            "TRIGGERLINE_SECRET_KEYS": settings.secret_keys.get_secret_value(),
            "TRIGGERLINE_TOPIC_PREFIX": settings.topics.prefix,
            "TRIGGERLINE_TOPIC_REPLICATION_FACTOR": str(settings.topics.replication_factor),
            "TRIGGERLINE_LOCAL_DIR": str(local_dir / component),
        }
    )
    env.update({name: str(free_port()) for name in PORT_VARIABLES})
    running = settings_under(env, monkeypatch)
    moved = dict(
        zip(stage_ports(component, manifest), stage_ports(component, running), strict=True)
    )
    return env, moved


@contextmanager
def started(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith(SETTINGS_PREFIXES)
    }
    [python, *arguments] = command
    assert python == "python"
    process = subprocess.Popen([sys.executable, *arguments], env={**inherited, **env})
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def answers_200(client: httpx.AsyncClient, url: str) -> bool | None:
    try:
        return True if (await client.get(url, timeout=1.0)).status_code == 200 else None
    except httpx.HTTPError:
        return None


def probe_urls(container: dict[str, Any], moved: dict[int, int]) -> list[str]:
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    urls = []
    for probe in ("livenessProbe", "readinessProbe"):
        request = container[probe]["httpGet"]
        urls.append(f"http://{PROBE_HOST}:{moved[ports[request['port']]]}{request['path']}")
    return urls


async def test_every_stage_answers_its_manifests_probes_from_outside_loopback(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls: list[str] = []
    with contextlib.ExitStack() as stack:
        for component in STAGES:
            container = only_container(deployments()[component])
            env, moved = as_deployed(component, settings, tmp_path, monkeypatch)
            process = stack.enter_context(started(container["command"], env))
            assert process.poll() is None
            urls.extend(probe_urls(container, moved))

        async with httpx.AsyncClient() as client:
            answered = await asyncio.gather(
                *(eventually(partial(answers_200, client, url), 90.0) for url in urls)
            )

    assert answered == [True] * len(urls)
    assert len(urls) == 2 * len(STAGES)
