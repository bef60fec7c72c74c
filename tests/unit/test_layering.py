"""The package structure holds: the contract depends on nothing, kinds on no stage, stages on
no other stage, and no stage decides by a kind's name."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from kinds import KINDS, WebhookKind
from schemas.triggers import DefinitionSlug

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("ingest", "processors", "dispatchers")
# What each package may import from the project; anything else is a dependency pointing the
# wrong way.
ALLOWED = {
    "schemas": {"schemas"},
    "runtime": {"runtime", "schemas"},
    "kinds": {"kinds", "runtime", "schemas"},
    "ingest": {"ingest", "kinds", "runtime", "schemas"},
    "processors": {"processors", "kinds", "runtime", "schemas"},
    "dispatchers": {"dispatchers", "kinds", "runtime", "schemas"},
}
PROJECT = {*ALLOWED, "deploy", "tests", "benchmarks"}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & PROJECT


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_lies_below_it(package: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) - ALLOWED[package])
        for path in modules(package)
    }
    assert {path: names for path, names in wrong.items() if names} == {}


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_compares_a_value_with_a_kind_name(stage: str) -> None:
    found = []
    for path in modules(stage):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Compare):
                constants = [
                    c.value
                    for c in (node.left, *node.comparators)
                    if isinstance(c, ast.Constant) and c.value in KINDS
                ]
                if constants:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {constants}")
    assert found == []


def test_every_kind_name_in_the_contract_has_a_kind_module() -> None:
    assert set(get_args(DefinitionSlug)) == set(KINDS)
    assert all(slug == kind.slug for slug, kind in KINDS.items())


@pytest.mark.parametrize("slug", sorted(KINDS))
def test_a_webhook_kind_is_verified_with_secrets_it_requires(slug: str) -> None:
    kind = KINDS[slug]
    if isinstance(kind, WebhookKind):
        assert kind.verification is not None
        assert kind.required_secrets
        assert set(kind.required_secrets) <= set(kind.signing_secrets)
    else:
        assert kind.arrives_by == "schedule"
        assert kind.verification is None
