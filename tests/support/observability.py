"""The Grafana dashboard and the Prometheus alert rules as data: their PromQL expressions, the
metric names those select, and the series names Triggerline's processes really export."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "triggerline.json"
ALERT_RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
# The packages whose modules may declare Prometheus collectors.
SERVICE_PACKAGES = ("runtime", "schemas", "kinds", "ingest", "processors", "dispatchers")
# Series Prometheus itself adds to every scraped target.
SCRAPE_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)
# What Grafana puts in place of its variables before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
# The series a collector of each type exposes, by suffix of its family name (prometheus_client
# drops a counter's `_total` from the family name and adds it back on exposition).
SUFFIXES_BY_TYPE = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it is written (a panel's title, a rule's name)."""

    where: str
    promql: str


def exported_series() -> set[str]:
    """Every series name a Triggerline process can expose on /metrics: its service modules are
    all imported first, so a collector declared in any of them is registered."""
    for package in SERVICE_PACKAGES:
        for module in _modules(package):
            importlib.import_module(module)
    return {name for family in REGISTRY.collect() for name in series_of(family)}


def series_of(family: Metric) -> set[str]:
    return {family.name + suffix for suffix in SUFFIXES_BY_TYPE[family.type]}


def _modules(package: str) -> Iterator[str]:
    yield package
    path = [str(ROOT / package)]
    for found in pkgutil.walk_packages(path, prefix=f"{package}."):
        # `python -m` entry points only start services when run as __main__.
        if not found.name.endswith(".__main__"):
            yield found.name


def selected_metrics(promql: str) -> set[str]:
    """The metric names `promql` selects; ValueError if it does not parse, or selects series
    without naming their metric."""
    for variable, value in GRAFANA_VARIABLES.items():
        promql = promql.replace(variable, value)
    names: set[str] = set()
    unnamed: list[str] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            else:
                unnamed.append(str(node))
        return True

    promql_parser.walk(promql_parser.parse(promql), visit)
    if unnamed:
        raise ValueError(f"selectors without a metric name: {unnamed}")
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(of: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows included."""
    for panel in of.get("panels", []):
        yield panel
        yield from panels(panel)


def dashboard_expressions(of: dict[str, Any]) -> list[Expression]:
    found = [
        Expression(f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"])
        for panel in panels(of)
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in of.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query)
            found.append(Expression(f"variable {variable.get('name')!r}", _label_values(text)))
    return found


def _label_values(query: str) -> str:
    """The series selector inside Grafana's `label_values(selector, label)`, or the query."""
    if query.startswith("label_values(") and "," in query:
        return query.removeprefix("label_values(").rsplit(",", 1)[0]
    return query


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERT_RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def rule_expressions(rules: list[dict[str, Any]]) -> list[Expression]:
    return [
        Expression(f"rule {rule.get('alert') or rule.get('record')!r}", rule["expr"])
        for rule in rules
    ]


def recorded_series(rules: list[dict[str, Any]]) -> set[str]:
    return {rule["record"] for rule in rules if "record" in rule}


def unknown_metrics(expressions: list[Expression], known: set[str]) -> dict[str, list[str]]:
    """Per expression, the metric names it selects that nothing exports."""
    unknown = {
        expression.where: sorted(selected_metrics(expression.promql) - known)
        for expression in expressions
    }
    return {where: names for where, names in unknown.items() if names}
