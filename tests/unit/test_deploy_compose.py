"""The compose deployment runs what the stages are, as the Kubernetes manifests do: the same
commands, health checks on ports and paths the stages serve under the environment each service
gives them, start-up order by conditions that can hold, Prometheus finding every replica, and
secrets only from the git-ignored .env."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import yaml

from runtime.settings import Settings
from tests.support.deployment import (
    COMPOSE_DIR,
    COMPOSE_ENV_EXAMPLE,
    COMPOSE_FILE,
    COMPOSE_PROMETHEUS,
    DOCKERFILE,
    REPO_ROOT,
    STAGES,
    compose_services,
    deployments,
    image_environment,
    is_cli_command,
    only_container,
    served_paths,
    settings_under,
)

pytestmark = pytest.mark.unit

REPLICAS = {"ingest": 2, "processors": 3, "dispatchers": 2, "delivery-log-sink": 1, "cron": 1}
HEALTH_URL = re.compile(r"http://127\.0\.0\.1:(?P<port>\d+)(?P<path>/[^'\"\s]*)")
INTERPOLATED = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?P<rule>[^}]*)\}")
SECRET_VARIABLES = ("DATABASE_URL", "TRIGGERLINE_SECRET_KEYS", "POSTGRES_PASSWORD")


def service_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    environment = {
        name: str(value) for name, value in compose_services()[service]["environment"].items()
    }
    return settings_under({**image_environment(), **environment}, monkeypatch)


def test_every_stage_is_a_service_with_its_replicas() -> None:
    services = compose_services()

    assert {name: services[name]["deploy"]["replicas"] for name in STAGES} == REPLICAS


@pytest.mark.parametrize("component", STAGES)
def test_services_run_the_same_commands_as_the_kubernetes_pods(component: str) -> None:
    service = compose_services()[component]
    container = only_container(deployments()[component])

    assert service["command"] == container["command"]
    assert service["image"] == container["image"]


def test_the_image_is_built_from_the_dockerfile() -> None:
    for name in [*STAGES, "setup"]:
        build = compose_services()[name]["build"]
        assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


@pytest.mark.parametrize("component", STAGES)
def test_health_checks_ask_the_stage_on_a_port_and_path_it_serves(
    component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    [url] = HEALTH_URL.findall(" ".join(compose_services()[component]["healthcheck"]["test"]))
    port, path = int(url[0]), url[1]

    assert path == "/readyz"
    assert path in served_paths(component, port, service_settings(component, monkeypatch))


@pytest.mark.parametrize("component", STAGES)
def test_stop_grace_and_memory_match_the_kubernetes_pods(component: str) -> None:
    service = compose_services()[component]
    pod = deployments()[component]["spec"]["template"]["spec"]
    [container] = pod["containers"]

    assert service["stop_grace_period"] == f"{pod['terminationGracePeriodSeconds']}s"
    # Docker's M is a mebibyte.
    limit = service["deploy"]["resources"]["limits"]["memory"]
    assert limit.removesuffix("M") == container["resources"]["limits"]["memory"].removesuffix("Mi")


def test_ingest_publishes_its_public_port_once_per_replica(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = service_settings("ingest", monkeypatch)
    [published] = compose_services()["ingest"]["ports"]
    host, host_ports, container_port = published.split(":")
    first, last = (int(port) for port in host_ports.split("-"))

    assert host == "127.0.0.1"
    assert int(container_port) == settings.ingest.port
    assert last - first + 1 == REPLICAS["ingest"]
    assert settings.cron.enabled is False


def test_start_up_waits_on_conditions_that_can_hold() -> None:
    services = compose_services()
    for name, service in services.items():
        for target, condition in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[target]
            elif condition["condition"] == "service_completed_successfully":
                assert services[target]["restart"] == "no"
    for component in STAGES:
        assert services[component]["depends_on"]["setup"] == {
            "condition": "service_completed_successfully"
        }


def test_setup_migrates_and_creates_the_topics() -> None:
    [shell, flag, script] = compose_services()["setup"]["command"]

    assert (shell, flag) == ("sh", "-c")
    assert script == "triggerline migrate && triggerline topics ensure"
    assert is_cli_command("migrate")
    assert is_cli_command("topics ensure")
    assert not is_cli_command("topics ensured")


def test_kafka_is_the_release_the_local_broker_runs() -> None:
    pom = (REPO_ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    [version] = re.findall(r"<kafka\.version>([^<]+)</kafka\.version>", pom)

    assert compose_services()["kafka"]["image"] == f"apache/kafka:{version}"


def test_every_image_is_pinned() -> None:
    for name, service in compose_services().items():
        _, _, tag = service["image"].partition(":")
        assert re.fullmatch(r"v?\d+(\.\d+)+(-[a-z]+)?", tag), f"{name}: {service['image']}"


def test_secrets_come_from_the_ignored_env_file() -> None:
    text = COMPOSE_FILE.read_text()
    example = dict(
        line.split("=", 1)
        for line in COMPOSE_ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    used = {match["name"]: match["rule"] for match in INTERPOLATED.finditer(text)}

    # Each is required (compose refuses to start without it) and has an empty example.
    assert used.keys() == example.keys()
    assert all(rule.startswith(":?") for rule in used.values())
    assert set(example.values()) == {""}
    for service in compose_services().values():
        for name, value in service.get("environment", {}).items():
            if name in SECRET_VARIABLES:
                assert INTERPOLATED.search(str(value)), f"{name} is written into compose.yaml"
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert str((COMPOSE_DIR / ".env").relative_to(REPO_ROOT)) in ignored


def mounts(service: str) -> dict[str, str]:
    """A service's bind mounts, container path to host path."""
    return {
        volume["target"]: volume["source"]
        for volume in compose_services()[service]["volumes"]
        if isinstance(volume, dict) and volume["type"] == "bind"
    }


def prometheus_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(COMPOSE_PROMETHEUS.read_text())
    return config


def test_prometheus_finds_every_replica_of_every_stage_on_its_ops_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [job] = [j for j in prometheus_config()["scrape_configs"] if j["job_name"] == "triggerline"]
    found = {}
    for lookup in job["dns_sd_configs"]:
        [name] = lookup["names"]
        found[name] = lookup["port"]

    expected = {
        component: STAGES[component].ops_port(service_settings(component, monkeypatch))
        for component in STAGES
    }
    assert found == expected
    assert {"source_labels": ["__meta_dns_name"], "target_label": "stage"} in job["relabel_configs"]


def test_prometheus_loads_this_config_and_the_alert_rules_beside_it() -> None:
    binds = mounts("prometheus")
    config_target = "/etc/prometheus/prometheus.yml"
    [rules] = prometheus_config()["rule_files"]

    assert (COMPOSE_DIR / binds[config_target]).resolve() == COMPOSE_PROMETHEUS
    assert binds[f"/etc/prometheus/{rules}"] == "../prometheus/alerts.yml"
    # Bounded storage: by age and by size.
    flags = compose_services()["prometheus"]["command"]
    assert any(flag.startswith("--storage.tsdb.retention.time=") for flag in flags)
    assert any(flag.startswith("--storage.tsdb.retention.size=") for flag in flags)
    assert f"--config.file={config_target}" in flags


def test_the_image_version_is_the_release() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]

    assert compose_services()["ingest"]["image"] == f"triggerline:{project['version']}"
