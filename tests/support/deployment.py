"""The deployment files in deploy/, read as Docker, Compose and Kubernetes read them, and what each
stage really serves, for the tests that keep the two in step."""

from __future__ import annotations

import copy
import functools
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from deploy.cli import app as cli_app
from ingest.app import ingest_app
from runtime.ops_server import OpsServer
from runtime.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "deploy" / "container" / "Dockerfile"
COMPOSE_DIR = REPO_ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
COMPOSE_PROMETHEUS = COMPOSE_DIR / "prometheus.yml"
COMPOSE_ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
KUBERNETES_DIR = REPO_ROOT / "deploy" / "kubernetes"
TOPICS_MANIFEST = KUBERNETES_DIR / "topics.yaml"
CONFIG_MAP = KUBERNETES_DIR / "config.yaml"
KAFKA_TOPIC_SCHEMA = REPO_ROOT / "tests" / "unit" / "schemas" / "strimzi-kafkatopic-v1beta2.json"

# The label values a teammate's Prometheus config, the alert rules and the dashboards group by.
PART_OF = "triggerline"
COMPONENT_LABEL = "app.kubernetes.io/component"
# What a Secret reference stands for when settings are read from a container's environment.
FROM_SECRET = "from-a-secret"
# Prefixes of every variable Settings reads.
SETTINGS_PREFIXES = ("TRIGGERLINE_", "KAFKA_", "DATABASE_")


@dataclass(frozen=True)
class Stage:
    """A stage as it runs: its module, the ops port it serves and, for ingest, its public port."""

    component: str
    module: str
    ops_port: Callable[[Settings], int]
    public_port: Callable[[Settings], int] | None = None


STAGES: dict[str, Stage] = {
    stage.component: stage
    for stage in (
        Stage("ingest", "ingest", lambda s: s.ingest.metrics_port, lambda s: s.ingest.port),
        Stage("processors", "processors", lambda s: s.processor.metrics_port),
        Stage("dispatchers", "dispatchers", lambda s: s.dispatcher.metrics_port),
        Stage("delivery-log-sink", "dispatchers.sink", lambda s: s.sink.metrics_port),
        Stage("cron", "ingest.cron", lambda s: s.cron.metrics_port),
    )
}


def is_cli_command(words: str) -> bool:
    """Whether `triggerline <words>` is a command the CLI has."""
    command = typer.main.get_command(cli_app)
    for word in words.split():
        commands = getattr(command, "commands", {})
        if word not in commands:
            return False
        command = commands[word]
    return True


def ops_paths() -> set[str]:
    """What every stage's ops port answers."""
    routes = OpsServer("127.0.0.1", 0, dict).application().router.routes()
    return {route.resource.canonical for route in routes if route.resource is not None}


def ingest_public_paths() -> set[str]:
    """What ingest's public port answers (besides webhooks and the API): its own routes."""
    return {path for route in ingest_app().routes if (path := getattr(route, "path", None))}


def served_paths(component: str, port: int, settings: Settings) -> set[str]:
    """The paths the stage answers on `port` under `settings`; none on a port it does not serve."""
    stage = STAGES[component]
    if port == stage.ops_port(settings):
        return ops_paths()
    if stage.public_port is not None and port == stage.public_port(settings):
        return ingest_public_paths()
    return set()


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """The file's documents, each test getting its own copy to change."""
    return copy.deepcopy(_parsed(path))


@functools.cache
def _parsed(path: Path) -> list[dict[str, Any]]:
    documents = yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader)
    return [document for document in documents if document]


def kubernetes_resources() -> list[dict[str, Any]]:
    """Every resource of deploy/kubernetes but the generated topics."""
    return [
        resource
        for path in sorted(KUBERNETES_DIR.glob("*.yaml"))
        if path != TOPICS_MANIFEST
        for resource in yaml_documents(path)
    ]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [resource for resource in kubernetes_resources() if resource["kind"] == kind]


def deployments() -> dict[str, dict[str, Any]]:
    """The Deployments by the component their pods are labelled with."""
    return {
        deployment["spec"]["template"]["metadata"]["labels"][COMPONENT_LABEL]: deployment
        for deployment in of_kind("Deployment")
    }


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    [container] = workload["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def config_map_data() -> dict[str, str]:
    [config_map] = yaml_documents(CONFIG_MAP)
    data: dict[str, str] = config_map["data"]
    return data


def container_environment(container: dict[str, Any]) -> dict[str, str]:
    """What a container's process finds in its environment: the image's ENV, then the
    ConfigMap it takes (envFrom), then its own env, a Secret's values standing as FROM_SECRET."""
    env = image_environment()
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == yaml_documents(CONFIG_MAP)[0]["metadata"]["name"]
        env.update(config_map_data())
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", FROM_SECRET)
    return env


def settings_under(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a process reads from exactly this environment."""
    for name in list(os.environ):
        if name.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(SETTINGS_PREFIXES):
            monkeypatch.setenv(name, value)
    return Settings()


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) in order, continuation lines joined and comments left out."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending = f"{pending} {stripped}" if pending else stripped
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the image's last build stage, the one that runs."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from + 1 :]


def image_environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in final_stage():
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def compose() -> dict[str, Any]:
    [document] = yaml_documents(COMPOSE_FILE)
    return document


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return services
