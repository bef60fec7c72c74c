"""The alert rules and scrape configs pass Prometheus's own checks, and the rules fire (and stay
quiet) as deploy/prometheus/alerts_test.yml expects, run by Debian's promtool."""

from __future__ import annotations

import pytest

from deploy import local_prometheus
from deploy.local_prometheus import CONFIG_DIR, LOCAL_CONFIG

pytestmark = pytest.mark.integration

ALERTS = CONFIG_DIR / "alerts.yml"
ALERT_TESTS = CONFIG_DIR / "alerts_test.yml"


def test_the_alert_rules_are_valid() -> None:
    checked = local_prometheus.promtool("check", "rules", str(ALERTS))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_the_local_scrape_config_is_valid_and_loads_the_rules() -> None:
    checked = local_prometheus.promtool("check", "config", str(LOCAL_CONFIG))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout


def test_the_alert_rules_pass_their_unit_tests() -> None:
    tested = local_prometheus.promtool("test", "rules", str(ALERT_TESTS))

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
