"""A real Prometheus, configured by deploy/prometheus, scrapes every stage of a running pipeline:
after signed Slack events flow through it, each target is up and the series the alert rules and
the dashboard read are there with the traffic in them; every rule evaluates and every dashboard
query runs. The production config's pod relabelling keeps exactly the annotated Triggerline
pods, each labelled with its stage."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy import local_prometheus
from runtime.settings import Settings
from tests.integration.support.pipeline import Pipeline, running_pipeline
from tests.integration.support.polling import eventually
from tests.integration.support.prometheus import (
    Pod,
    PrometheusApi,
    local_config,
    ops_ports,
    production_config,
)
from tests.integration.support.slack_events import post_slack, slack_message
from tests.integration.support.stages import free_port
from tests.support.observability import dashboard, dashboard_expressions

pytestmark = pytest.mark.integration

SLACK_SECRET = "prometheus-slack-secret"
EVENTS = 5
STAGES = {"ingest", "processors", "dispatchers", "delivery-log-sink", "cron"}
CONSUMING = {"processors", "dispatchers", "delivery-log-sink"}


@pytest.fixture
def prometheus_binaries() -> None:
    """Debian's Prometheus, installed before the pipeline starts rather than while it runs."""
    local_prometheus.ensure()


async def send_slack_events(pipeline: Pipeline) -> None:
    trigger_id = await pipeline.create_trigger(
        {
            "definition": "slack",
            "name": "support",
            "target": {"kind": "noop"},
            "config": {"event_types": ["message"]},
            "secrets": {"SLACK_SIGNING_SECRET": SLACK_SECRET},
        }
    )
    event_ids = [f"Ev{uuid.uuid4().hex[:10]}" for _ in range(EVENTS)]
    for n, event_id in enumerate(event_ids):
        body = slack_message(event_id, "C1", f"message {n}")
        await post_slack(pipeline, trigger_id, body, SLACK_SECRET)
    for event_id in event_ids:
        await pipeline.log.outcome(event_id, "dispatcher", "delivered")


async def targets_up(api: PrometheusApi, count: int) -> list[dict[str, Any]]:
    async def all_up() -> list[dict[str, Any]] | None:
        active = (await api.targets())["activeTargets"]
        up = len(active) == count and all(t["health"] == "up" for t in active)
        return active if up else None

    return await eventually(all_up, timeout_s=20.0, interval_s=0.5)


async def check_series_after_traffic(api: PrometheusApi) -> None:
    await api.until_value(
        'sum(triggerline_ingest_requests_total{stage="ingest", definition="slack",'
        f' outcome="accepted"}}) >= {EVENTS}'
    )
    await api.until_value(
        'sum(triggerline_processor_events_total{stage="processors", outcome="routed"})'
        f" >= {EVENTS}"
    )
    await api.until_value(
        'sum(triggerline_dispatcher_deliveries_total{stage="dispatchers", outcome="delivered"})'
        f" >= {EVENTS}"
    )
    await api.until_value(f"sum(triggerline_end_to_end_seconds_count) >= {EVENTS}")
    buckets = "rate(triggerline_end_to_end_seconds_bucket[1m])"
    [p99] = (await api.until_value(f"histogram_quantile(0.99, sum by (le) ({buckets}))")).values()
    assert 0 < p99 < 30
    await api.until_value('triggerline_delivery_log_sink_rows_total{stage="delivery-log-sink"} > 0')
    # Each consuming stage reports its group's lag, and the recording rule sums it per stage.
    lagging = await api.until_value("count by (stage) (triggerline_consumer_lag)")
    assert lagging.keys() == {f"stage={stage}" for stage in CONSUMING}
    recorded = await api.until_value("count by (stage) (stage:triggerline_consumer_lag:sum)")
    assert recorded.keys() == {f"stage={stage}" for stage in CONSUMING}
    # Ingest's producer and the one on its own elect exactly one leader.
    assert await api.until_value("sum(triggerline_cron_leader) == 1") == {"": 1.0}
    # The relay published both triggers: nothing left in the outbox.
    await api.until_value('max(triggerline_outbox_pending_rows{stage="ingest"}) == 0')
    await api.until_value('max(triggerline_outbox_oldest_pending_age_seconds{stage="ingest"}) == 0')
    letters = await api.until_value("count by (stage) (triggerline_dead_letters_total)")
    assert letters.keys() == {"stage=processors", "stage=dispatchers"}


async def check_every_rule_evaluates(api: PrometheusApi) -> None:
    async def evaluated() -> list[dict[str, Any]] | None:
        rules = [rule for group in await api.rule_groups() for rule in group["rules"]]
        if not rules or any(rule.get("health") == "unknown" for rule in rules):
            return None
        return rules

    rules = await eventually(evaluated, timeout_s=10.0, interval_s=0.5)
    assert len(rules) > 10
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []


# Panels that show the traffic just sent (cron ticks, circuits and the like stay empty here).
TRAFFIC_PANELS = {
    "Ingest: webhook requests by outcome",
    "Processors: decisions by outcome",
    "Dispatchers: deliveries by outcome",
    "Delivery-log sink: rows",
    "End to end: ingest acceptance to delivery",
    "Ingest: Kafka acknowledgement of a raw event",
    "Consumer lag by stage",
    "Dead letters by stage and reason",
    "Config relay: oldest unpublished registry change",
}


async def check_every_dashboard_query_runs(api: PrometheusApi) -> None:
    queries = [
        (expression.where, expression.promql.replace("$__rate_interval", "1m"))
        for expression in dashboard_expressions(dashboard())
    ]
    for _, promql in queries:
        await api.query(promql)  # refused unless Prometheus evaluates it
    traffic = [(where.split("'")[1], promql) for where, promql in queries]
    traffic = [(title, promql) for title, promql in traffic if title in TRAFFIC_PANELS]
    assert {title for title, _ in traffic} == TRAFFIC_PANELS
    for _, promql in traffic:
        # A rate needs two scrapes of a series that appeared with the traffic.
        await api.until_value(promql)


async def test_prometheus_scrapes_every_stage_of_a_running_pipeline(
    prometheus_binaries: None, settings: Settings, tmp_path: Path
) -> None:
    async with running_pipeline(settings, extra_stages=("ingest.cron",)) as pipeline:
        ports = ops_ports(pipeline.settings)
        config = local_config(ports, tmp_path)
        with local_prometheus.running(config, tmp_path / "local", free_port()) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
                api = PrometheusApi(client)
                active = await targets_up(api, len(STAGES))
                assert {t["labels"]["stage"] for t in active} == STAGES
                await send_slack_events(pipeline)
                await check_series_after_traffic(api)
                await check_every_rule_evaluates(api)
                await check_every_dashboard_query_runs(api)

        pods = [Pod(f"{stage}-0", stage, "true", port) for stage, port in ports.items()]
        pods += [
            Pod("ingest-unannotated", "ingest", "false", ports["ingest"]),
            Pod("postgres-0", "postgres", "true", ports["ingest"]),
        ]
        config = production_config(pods, tmp_path)
        with local_prometheus.running(config, tmp_path / "production", free_port()) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
                active = await targets_up(PrometheusApi(client), len(STAGES))
        pipeline.assert_every_stage_runs()

    kept = {(t["labels"]["stage"], t["labels"]["pod"], t["labels"]["instance"]) for t in active}
    assert kept == {(stage, f"{stage}-0", f"127.0.0.1:{port}") for stage, port in ports.items()}
