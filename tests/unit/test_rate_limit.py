"""The per-trigger token bucket, its config, and the recent-id memory behind `duplicate`."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.rate_limit import RateLimit, TokenBucket, retry_after_header
from ingest.recent_ids import RecentIds

pytestmark = pytest.mark.unit

DEFAULT = RateLimit(per_second=100.0, burst=500.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(RateLimit(per_second=2.0, burst=3.0), FakeClock())
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)


def test_tokens_flow_back_at_the_configured_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(RateLimit(per_second=2.0, burst=3.0), clock)
    for _ in range(3):
        bucket.take()
    clock.now += 0.25
    assert bucket.take() == pytest.approx(0.25)
    clock.now += 0.25
    assert bucket.take() == 0.0
    clock.now += 60
    assert [bucket.take() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.5)]


def test_a_refused_request_spends_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(RateLimit(per_second=1.0, burst=1.0), clock)
    bucket.take()
    for _ in range(10):
        assert bucket.take() > 0
    clock.now += 1.0
    assert bucket.take() == 0.0


@pytest.mark.parametrize(
    ("wait_s", "header"), [(0.001, "1"), (1.0, "1"), (1.01, "2"), (29.5, "30")]
)
def test_retry_after_is_whole_seconds_rounded_up(wait_s: float, header: str) -> None:
    assert retry_after_header(wait_s) == header


def test_a_trigger_without_a_limit_gets_the_default() -> None:
    assert RateLimit.from_config({"event_types": ["message"]}, DEFAULT) == DEFAULT


def test_a_trigger_sets_its_own_limit() -> None:
    config = {"rate_limit": {"per_second": 5, "burst": 20}}
    assert RateLimit.from_config(config, DEFAULT) == RateLimit(5.0, 20.0)


def test_a_limit_without_a_burst_allows_at_least_one_second_of_traffic() -> None:
    config = {"rate_limit": {"per_second": 2000}}
    assert RateLimit.from_config(config, DEFAULT) == RateLimit(2000.0, 2000.0)


@pytest.mark.parametrize(
    "given",
    [
        "fast",
        {"per_second": 0},
        {"per_second": -3},
        {"per_second": "10"},
        {"per_second": True},
        {"per_second": float("nan")},
        {"per_second": 5, "burst": 0.5},
    ],
)
def test_an_invalid_limit_falls_back_to_the_default(given: Any) -> None:
    assert RateLimit.from_config({"rate_limit": given}, DEFAULT) == DEFAULT


def test_recent_ids_remember_per_trigger_and_forget_the_oldest() -> None:
    recent = RecentIds(capacity=2, retention_s=3600)
    recent.remember(("t1", "Ev1"))
    assert ("t1", "Ev1") in recent
    assert ("t2", "Ev1") not in recent
    recent.remember(("t1", "Ev2"))
    recent.remember(("t1", "Ev1"))  # seen again: now the newest
    recent.remember(("t1", "Ev3"))
    assert ("t1", "Ev2") not in recent
    assert ("t1", "Ev1") in recent
    assert ("t1", "Ev3") in recent


def test_recent_ids_forget_ids_past_their_retention() -> None:
    clock = FakeClock()
    recent = RecentIds(capacity=100, retention_s=60, clock=clock)
    recent.remember(("t1", "Ev1"))
    clock.now += 30
    recent.remember(("t1", "Ev2"))
    clock.now += 31
    # Ev1 is 61 s old: no longer a duplicate, and gone from memory once anything is remembered.
    assert ("t1", "Ev1") not in recent
    assert ("t1", "Ev2") in recent
    recent.remember(("t1", "Ev3"))
    assert len(recent) == 2
    clock.now += 120
    recent.remember(("t1", "Ev4"))
    assert len(recent) == 1
