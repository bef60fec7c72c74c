"""The Grafana dashboard and the alert rules select only series Triggerline really exports (or
the rules record), the dashboard imports into any Grafana with its data source chosen there,
and every alert tells an operator what happened and what to do."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.observability import (
    SCRAPE_SERIES,
    alert_rules,
    dashboard,
    dashboard_expressions,
    exported_series,
    panels,
    recorded_series,
    rule_expressions,
    selected_metrics,
    unknown_metrics,
)

pytestmark = pytest.mark.unit

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def known() -> set[str]:
    return exported_series() | recorded_series(alert_rules()) | SCRAPE_SERIES


def test_the_exported_series_carry_their_exposition_suffixes(known: set[str]) -> None:
    # A counter, a histogram and a gauge, as /metrics spells them.
    assert {
        "triggerline_ingest_requests_total",
        "triggerline_end_to_end_seconds_bucket",
        "triggerline_end_to_end_seconds_count",
        "triggerline_consumer_lag",
        "triggerline_dead_letters_total",
        "triggerline_outbox_oldest_pending_age_seconds",
    } <= known
    assert not {"triggerline_ingest_requests", "triggerline_end_to_end_seconds"} & known


def test_every_dashboard_query_selects_exported_series(known: set[str]) -> None:
    expressions = dashboard_expressions(dashboard())

    assert len(expressions) > 20
    assert unknown_metrics(expressions, known) == {}


def test_every_alert_rule_selects_exported_or_recorded_series(known: set[str]) -> None:
    expressions = rule_expressions(alert_rules())

    assert len(expressions) > 10
    assert unknown_metrics(expressions, known) == {}


@pytest.mark.parametrize(
    ("promql", "missing"),
    [
        (
            "rate(triggerline_no_such_thing_total[$__rate_interval])",
            ["triggerline_no_such_thing_total"],
        ),
        # A histogram is exported as its buckets, sum and count, never under its own name.
        ("triggerline_end_to_end_seconds", ["triggerline_end_to_end_seconds"]),
        # A counter is exported with `_total`.
        ("sum(rate(triggerline_ingest_requests[5m]))", ["triggerline_ingest_requests"]),
        ("up == 0 and on() triggerline_cron_leaderz > 0", ["triggerline_cron_leaderz"]),
    ],
)
def test_a_query_of_a_series_nothing_exports_is_caught(
    known: set[str], promql: str, missing: list[str]
) -> None:
    panel = {"panels": [{"title": "p", "targets": [{"refId": "A", "expr": promql}]}]}

    assert unknown_metrics(dashboard_expressions(panel), known) == {"panel 'p' A": missing}


def test_a_selector_without_a_metric_name_is_refused() -> None:
    with pytest.raises(ValueError, match="without a metric name"):
        selected_metrics('{stage="ingest"}')


def test_a_query_that_does_not_parse_is_refused() -> None:
    with pytest.raises(ValueError, match="unclosed left parenthesis"):
        selected_metrics("sum(rate(triggerline_consumer_lag[5m])")


def test_the_dashboard_imports_with_its_data_source_chosen_at_import() -> None:
    board = dashboard()

    assert board["uid"] == "triggerline"
    assert isinstance(board["schemaVersion"], int)
    [prometheus_input] = board["__inputs"]
    assert (prometheus_input["name"], prometheus_input["pluginId"]) == (
        "DS_PROMETHEUS",
        "prometheus",
    )
    [variable] = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    assert variable["current"]["value"] == "${DS_PROMETHEUS}"


def test_every_panel_queries_through_the_datasource_variable() -> None:
    graphs = [panel for panel in panels(dashboard()) if panel["type"] != "row"]

    assert graphs
    for panel in graphs:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["datasource"] == DATASOURCE for target in panel["targets"])
    ids = [panel["id"] for panel in panels(dashboard())]
    assert len(ids) == len(set(ids))


def test_every_range_in_the_dashboard_is_the_rate_interval() -> None:
    ranges = [
        (expression.where, found)
        for expression in dashboard_expressions(dashboard())
        for found in re.findall(r"\[([^\]]*)\]", expression.promql)
    ]

    assert ranges
    assert [(where, found) for where, found in ranges if found != "$__rate_interval"] == []


def test_the_dashboard_shows_latency_as_p50_and_p99_of_each_histogram() -> None:
    latency: dict[str, set[str]] = {}
    pattern = re.compile(r"histogram_quantile\((0\.5|0\.99), .*?\((\w+)_bucket\[")
    for expression in dashboard_expressions(dashboard()):
        for quantile, histogram in pattern.findall(expression.promql):
            latency.setdefault(histogram, set()).add(quantile)

    assert "triggerline_end_to_end_seconds" in latency
    assert {histogram: {"0.5", "0.99"} for histogram in latency} == latency


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in alert_rules() if "alert" in rule]


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: str(rule["alert"]))
def test_every_alert_says_what_happened_and_what_to_do(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"page", "warning"}
    assert rule["alert"].startswith("Triggerline")
    annotations = rule["annotations"]
    assert 10 < len(annotations["summary"]) < 120
    assert len(annotations["description"]) > 150


def test_the_rules_cover_what_operators_must_hear_about() -> None:
    selected = {
        name
        for expression in rule_expressions(alert_rules())
        for name in selected_metrics(expression.promql)
    }

    assert {
        "triggerline_consumer_lag",
        "triggerline_dead_letters_total",
        "triggerline_ingest_requests_total",
        "triggerline_dispatcher_circuits",
        "triggerline_cron_lateness_seconds_bucket",
        "triggerline_cron_leader",
        "triggerline_outbox_oldest_pending_age_seconds",
    } <= selected
