"""Prometheus scraping a test's pipeline with the configs in deploy/prometheus, and its HTTP API.

A test's stages listen on free ports (concurrent tests and a local `triggerline run` must never
share one), so the configs are rewritten for those ports and nothing else. The production
config discovers Kubernetes pods, which a test has none of, and Debian's Prometheus is built
without Kubernetes discovery: its pod discovery is replaced by file discovery of targets that
carry the labels Kubernetes discovery gives a pod, so its relabelling runs as it would there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy.local_prometheus import CONFIG_DIR, LOCAL_CONFIG
from runtime.settings import (
    CronSettings,
    DispatcherSettings,
    IngestSettings,
    ProcessorSettings,
    Settings,
    SinkSettings,
)
from tests.integration.support.polling import eventually

PRODUCTION_CONFIG = CONFIG_DIR / "prometheus.yml"
ALERT_RULES = CONFIG_DIR / "alerts.yml"
# Each stage's ops port by default, as deploy/prometheus/local.yml names them.
DEFAULT_OPS_PORTS = {
    "ingest": IngestSettings.model_fields["metrics_port"].default,
    "processors": ProcessorSettings.model_fields["metrics_port"].default,
    "dispatchers": DispatcherSettings.model_fields["metrics_port"].default,
    "delivery-log-sink": SinkSettings.model_fields["metrics_port"].default,
    "cron": CronSettings.model_fields["metrics_port"].default,
}


def ops_ports(settings: Settings) -> dict[str, int]:
    """The ops port each stage of a test's pipeline listens on."""
    return {
        "ingest": settings.ingest.metrics_port,
        "processors": settings.processor.metrics_port,
        "dispatchers": settings.dispatcher.metrics_port,
        "delivery-log-sink": settings.sink.metrics_port,
        "cron": settings.cron.metrics_port,
    }


def local_config(ports: Mapping[str, int], into: Path) -> Path:
    """deploy/prometheus/local.yml with each stage's default port replaced by `ports`, and its
    rule file named by its absolute path (the rewritten config lives elsewhere)."""
    config = yaml.safe_load(LOCAL_CONFIG.read_text())
    moved = {DEFAULT_OPS_PORTS[stage]: port for stage, port in ports.items()}
    for job in config["scrape_configs"]:
        for group in job["static_configs"]:
            group["targets"] = [_moved(target, moved) for target in group["targets"]]
    config["rule_files"] = [str(ALERT_RULES)]
    path = into / "local.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _moved(target: str, ports: Mapping[int, int]) -> str:
    host, port = target.rsplit(":", 1)
    if int(port) not in ports:
        raise ValueError(f"local.yml scrapes {target}, the default port of no stage")
    return f"{host}:{ports[int(port)]}"


@dataclass(frozen=True)
class Pod:
    """What Kubernetes pod discovery tells Prometheus of one pod."""

    name: str
    component: str
    scrape: str
    ops_port: int

    def target_group(self) -> dict[str, Any]:
        return {
            # The address of a declared container port (the public one, for ingest).
            "targets": ["127.0.0.1:8080"],
            "labels": {
                "__meta_kubernetes_namespace": "triggerline",
                "__meta_kubernetes_pod_name": self.name,
                "__meta_kubernetes_pod_label_app_kubernetes_io_component": self.component,
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape": self.scrape,
                "__meta_kubernetes_pod_annotation_prometheus_io_port": str(self.ops_port),
            },
        }


def production_config(pods: list[Pod], into: Path) -> Path:
    """deploy/prometheus/prometheus.yml discovering `pods` from a file instead of Kubernetes,
    scraping every second rather than every 15 s, so that a test sees its first scrapes at
    once."""
    config = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    discovered = into / "pods.json"
    discovered.write_text(json.dumps([pod.target_group() for pod in pods]))
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
        job["file_sd_configs"] = [{"files": [str(discovered)]}]
    config["rule_files"] = [str(ALERT_RULES)]
    path = into / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class PrometheusApi:
    """The parts of Prometheus's HTTP API a test reads."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def _data(self, path: str, **params: str) -> Any:
        answer = (await self._client.get(f"/api/v1/{path}", params=params)).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    async def targets(self) -> dict[str, list[dict[str, Any]]]:
        data: dict[str, list[dict[str, Any]]] = await self._data("targets")
        return data

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) `promql` evaluates to now."""
        data = await self._data("query", query=promql)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    async def rule_groups(self) -> list[dict[str, Any]]:
        data = await self._data("rules")
        groups: list[dict[str, Any]] = data["groups"]
        return groups

    async def until_value(self, promql: str, timeout_s: float = 30.0) -> dict[str, float]:
        """`promql`'s samples by their labels, once it has any (every one true for a
        comparison), as floats."""

        async def found() -> dict[str, float] | None:
            samples = await self.query(promql)
            if not samples:
                return None
            return {_labels(s["metric"]): float(s["value"][1]) for s in samples}

        return await eventually(found, timeout_s, interval_s=0.5)


def _labels(metric: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(metric.items()))
