"""The deployment files are valid by their formats' own schemas and linters, checked offline: the
compose file against the Compose Specification (the schema check-jsonschema bundles), the
Kubernetes manifests against the API's schemas (bundled by kubernetes-validate, strict, so an
unknown field is an error rather than silently dropped), and the Dockerfile with hadolint.
Each check is also shown to refuse a broken copy, so a validator that accepted anything would
fail here too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.deployment import (
    COMPOSE_FILE,
    DOCKERFILE,
    REPO_ROOT,
    kubernetes_resources,
)

pytestmark = pytest.mark.unit

# The oldest Kubernetes release the manifests are checked against: policy/v1 budgets and
# everything else they use are there.
KUBERNETES_VERSION = "1.30.0"
HADOLINT = Path(sys.executable).parent / "hadolint"


def compose_errors(path: Path) -> str:
    """check-jsonschema's complaints about a compose file; empty when it is valid."""
    schema = ["--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *schema, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert compose_errors(COMPOSE_FILE) == ""


def test_the_compose_check_refuses_a_misspelt_key(tmp_path: Path) -> None:
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["processors"]["deploy"]["replica"] = 3
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))

    assert "replica" in compose_errors(path)


def resource_name(resource: dict[str, Any]) -> str:
    return f"{resource['kind']}/{resource['metadata']['name']}"


@pytest.mark.parametrize("resource", kubernetes_resources(), ids=resource_name)
def test_every_kubernetes_resource_follows_the_api_schema(resource: dict[str, Any]) -> None:
    # Raises for an invalid resource, and for a kind or API version the schemas lack.
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_check_refuses_an_unknown_field() -> None:
    [deployment, *_] = [r for r in kubernetes_resources() if r["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSecond"] = 5

    with pytest.raises(kubernetes_validate.ValidationError, match="periodSecond"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_dockerfile_passes_hadolint() -> None:
    result = hadolint(DOCKERFILE)

    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_refuses_an_unpinned_base_image(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("python:3.11.7-slim-bookworm", "python"))

    result = hadolint(broken)

    assert result.returncode != 0
    assert "DL3006" in result.stdout
