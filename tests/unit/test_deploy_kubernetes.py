"""The Kubernetes manifests run what the stages are: each Deployment's command is its stage's
module, its ports and probes are the ports and paths the stage serves under the settings the pod
gives it (the image's environment, the ConfigMap, its own env), and its labels and annotations
are the ones Prometheus discovers pods by."""

from __future__ import annotations

import importlib.util
import ipaddress
import tomllib
from typing import Any

import pytest

from runtime.settings import Settings
from tests.support.deployment import (
    COMPONENT_LABEL,
    CONFIG_MAP,
    PART_OF,
    REPO_ROOT,
    STAGES,
    config_map_data,
    container_environment,
    deployments,
    is_cli_command,
    of_kind,
    only_container,
    served_paths,
    settings_under,
    yaml_documents,
)

pytestmark = pytest.mark.unit

REPLICAS = {"ingest": 2, "processors": 3, "dispatchers": 2, "delivery-log-sink": 1, "cron": 2}
# Memory requests and limits in MiB. A processor worker holding an hour of deduplication marks
# stays near 110 MB (docs/performance.md); idle, ingest takes about 110 MiB and the others 60 to
# 70. Ingest and the dispatchers may burst above their request with request bodies and records
# waiting for delivery.
MEMORY_MI = {
    "ingest": (150, 256),
    "processors": (200, 200),
    "dispatchers": (150, 256),
    "delivery-log-sink": (150, 150),
    "cron": (150, 150),
}
SECRET_VARIABLES = ("DATABASE_URL", "TRIGGERLINE_SECRET_KEYS")


def release_image() -> str:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return f"triggerline:{project['version']}"


def runs_as_module(module: str) -> bool:
    """Whether `python -m module` runs something: a module, or a package with a __main__."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations is None:
        return True
    return importlib.util.find_spec(f"{module}.__main__") is not None


def stage_settings(component: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return settings_under(
        container_environment(only_container(deployments()[component])), monkeypatch
    )


def named_ports(container: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container["ports"]}


def pod_labels(component: str) -> dict[str, str]:
    labels: dict[str, str] = deployments()[component]["spec"]["template"]["metadata"]["labels"]
    return labels


def test_there_is_a_deployment_per_stage_with_its_replicas() -> None:
    found = {component: d["spec"]["replicas"] for component, d in deployments().items()}

    assert found == REPLICAS


@pytest.mark.parametrize("component", STAGES)
def test_pods_carry_the_labels_and_annotations_prometheus_discovers(
    component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = deployments()[component]
    template = deployment["spec"]["template"]
    ops_port = STAGES[component].ops_port(stage_settings(component, monkeypatch))

    assert template["metadata"]["labels"] == {
        "app.kubernetes.io/name": "triggerline",
        "app.kubernetes.io/part-of": PART_OF,
        COMPONENT_LABEL: component,
    }
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(ops_port),
    }
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()
    assert selector[COMPONENT_LABEL] == component


@pytest.mark.parametrize("component", STAGES)
def test_each_container_runs_its_stage_from_the_release_image(component: str) -> None:
    container = only_container(deployments()[component])
    module = STAGES[component].module

    assert container["command"] == ["python", "-m", module]
    assert runs_as_module(module)
    assert container["image"] == release_image()


@pytest.mark.parametrize("component", STAGES)
def test_container_ports_are_the_ports_the_stage_listens_on(
    component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = STAGES[component]
    settings = stage_settings(component, monkeypatch)
    expected = {"ops": stage.ops_port(settings)}
    if stage.public_port is not None:
        expected["http"] = stage.public_port(settings)

    assert named_ports(only_container(deployments()[component])) == expected
    # Probes and Prometheus come from outside the pod's loopback.
    assert not ipaddress.ip_address(settings.ops_host).is_loopback
    assert not ipaddress.ip_address(settings.ingest.host).is_loopback


@pytest.mark.parametrize("component", STAGES)
def test_probes_ask_for_paths_the_stage_serves(
    component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = only_container(deployments()[component])
    settings = stage_settings(component, monkeypatch)
    ports = named_ports(container)
    liveness = container["livenessProbe"]["httpGet"]
    readiness = container["readinessProbe"]["httpGet"]

    # Liveness is /healthz: a worker still restoring its marks is not ready, and must not be
    # restarted for it.
    assert liveness["path"] == "/healthz"
    assert readiness["path"] == "/readyz"
    for probe in (liveness, readiness):
        assert probe["path"] in served_paths(component, ports[probe["port"]], settings)


@pytest.mark.parametrize("component", STAGES)
def test_every_stage_has_one_disruption_budget(component: str) -> None:
    budgets = [
        budget
        for budget in of_kind("PodDisruptionBudget")
        if budget["spec"]["selector"]["matchLabels"].items() <= pod_labels(component).items()
    ]

    assert len(budgets) == 1
    assert budgets[0]["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize(
    "service", of_kind("Service"), ids=lambda service: service["metadata"]["name"]
)
def test_services_send_to_ports_their_pods_name(service: dict[str, Any]) -> None:
    [component] = [
        c for c in STAGES if service["spec"]["selector"].items() <= pod_labels(c).items()
    ]
    ports = named_ports(only_container(deployments()[component]))

    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports
        if service["spec"].get("clusterIP") == "None":
            assert port["port"] == ports[port["targetPort"]]


def mebibytes(quantity: str) -> int:
    assert quantity.endswith("Mi"), quantity
    return int(quantity.removesuffix("Mi"))


@pytest.mark.parametrize("component", STAGES)
def test_memory_and_cpu_are_requested_and_memory_bounded(component: str) -> None:
    resources = only_container(deployments()[component])["resources"]
    memory = (resources["requests"]["memory"], resources["limits"]["memory"])

    assert tuple(mebibytes(quantity) for quantity in memory) == MEMORY_MI[component]
    assert "cpu" in resources["requests"]


def grace_s(component: str) -> int:
    seconds: int = deployments()[component]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    return seconds


def test_termination_leaves_each_stage_its_own_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    dispatchers = stage_settings("dispatchers", monkeypatch)
    ingest_pause = only_container(deployments()["ingest"])["lifecycle"]["preStop"]["exec"]

    # Attempts in flight, then the commit and close.
    assert grace_s("dispatchers") >= 2 * dispatchers.dispatcher.shutdown_deadline_s
    # The preStop pause, then uvicorn's 10 s for requests in flight (ingest/__main__.py).
    assert grace_s("ingest") >= int(ingest_pause["command"][1]) + 10 + 5
    # A final transaction per owned partition, however slow the broker (processors.yaml).
    assert grace_s("processors") >= 60


def all_containers() -> list[dict[str, Any]]:
    workloads = of_kind("Deployment") + of_kind("Job")
    return [c for w in workloads for c in w["spec"]["template"]["spec"]["containers"]]


def test_secrets_come_only_from_the_secret() -> None:
    assert not set(SECRET_VARIABLES) & config_map_data().keys()
    for container in all_containers():
        for variable in container.get("env", []):
            if variable["name"] in SECRET_VARIABLES:
                reference = variable["valueFrom"]["secretKeyRef"]
                assert reference == {"name": "triggerline-secrets", "key": variable["name"]}


@pytest.mark.parametrize(
    ("component", "needs"),
    [
        ("ingest", {"DATABASE_URL", "TRIGGERLINE_SECRET_KEYS"}),
        ("dispatchers", {"TRIGGERLINE_SECRET_KEYS"}),
        ("delivery-log-sink", {"DATABASE_URL"}),
        ("processors", set()),
        ("cron", set()),
    ],
)
def test_each_stage_gets_the_secrets_it_reads_and_no_others(
    component: str, needs: set[str]
) -> None:
    env = only_container(deployments()[component]).get("env", [])

    assert {v["name"] for v in env if "valueFrom" in v} == needs


def test_ingest_leaves_cron_to_the_cron_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert stage_settings("ingest", monkeypatch).cron.enabled is False


def test_the_migration_job_runs_the_migrate_command() -> None:
    [job] = of_kind("Job")
    [container] = job["spec"]["template"]["spec"]["containers"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert container["command"] == ["triggerline", "migrate"]
    assert is_cli_command("migrate")
    assert scripts["triggerline"] == "deploy.cli:main"
    assert container["image"] == release_image()


def test_every_workload_reads_the_config_map_the_manifests_define() -> None:
    [config_map] = yaml_documents(CONFIG_MAP)

    for component in STAGES:
        [source] = only_container(deployments()[component])["envFrom"]
        assert source == {"configMapRef": {"name": config_map["metadata"]["name"]}}
