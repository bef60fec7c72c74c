"""The image definition installs all of Triggerline, at the tested versions, and runs a stage:
what it copies exists, is let through its ignore file and covers every package pyproject.toml
installs; its environment opens the stages' ports to the container network."""

from __future__ import annotations

import ipaddress
import json
import tomllib

import pytest

from runtime.settings import Settings
from tests.support.deployment import (
    DOCKERFILE,
    REPO_ROOT,
    STAGES,
    dockerfile_instructions,
    final_stage,
    image_environment,
    settings_under,
)

pytestmark = pytest.mark.unit

IGNORE_FILE = DOCKERFILE.with_name("Dockerfile.dockerignore")


def copied_sources() -> list[str]:
    """What the build copies from the context (not from another stage)."""
    sources: list[str] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and not arguments.startswith("--from="):
            *paths, _destination = arguments.split()
            sources.extend(paths)
    return sources


def test_both_stages_start_from_one_pinned_interpreter() -> None:
    bases = {
        arguments.split()[0]
        for keyword, arguments in dockerfile_instructions()
        if keyword == "FROM"
    }

    assert len(bases) == 1
    [base] = bases
    assert base.startswith("python:3.11.")


def test_it_copies_every_package_pyproject_installs() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = {
        pattern.rstrip("*")
        for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {source.rstrip("/") for source in copied_sources()}

    assert packages <= copied
    # The build also needs the metadata: the project, its pins and its readme.
    assert {"pyproject.toml", "constraints.txt", project["project"]["readme"]} <= copied
    for source in copied:
        assert (REPO_ROOT / source).exists(), source


def test_the_ignore_file_lets_through_what_it_copies() -> None:
    rules = [
        line for line in IGNORE_FILE.read_text().splitlines() if line and not line.startswith("#")
    ]
    allowed = {rule.removeprefix("!").rstrip("/") for rule in rules if rule.startswith("!")}

    assert rules[0] == "*"
    assert allowed == {source.rstrip("/") for source in copied_sources()}
    # The compose secrets never reach a build context, let alone a layer: a later rule wins.
    assert rules.index("deploy/compose") > rules.index("!deploy/")


def test_it_installs_with_the_tested_versions() -> None:
    [install] = [
        arguments
        for keyword, arguments in dockerfile_instructions()
        if keyword == "RUN" and "pip install" in arguments
    ]

    assert "-c constraints.txt ." in install


def test_it_runs_ingest_unless_told_another_stage_as_an_unprivileged_user() -> None:
    instructions = dict(final_stage())

    assert json.loads(instructions["CMD"]) == ["python", "-m", STAGES["ingest"].module]
    user = instructions["USER"].split(":")[0]
    assert user.isdigit()
    assert int(user) != 0


def test_it_exposes_every_stages_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    settings: Settings = settings_under(image_environment(), monkeypatch)
    exposed = {
        int(port)
        for keyword, arguments in final_stage()
        if keyword == "EXPOSE"
        for port in arguments.split()
    }

    expected = {stage.ops_port(settings) for stage in STAGES.values()} | {settings.ingest.port}
    assert exposed == expected
    # Ports reachable from the container network, state on the volume deployments mount.
    assert ipaddress.ip_address(settings.ops_host).is_unspecified
    assert ipaddress.ip_address(settings.ingest.host).is_unspecified
    assert str(settings.local_dir) == "/var/lib/triggerline"
