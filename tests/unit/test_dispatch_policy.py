"""Backoff, Retry-After, response classification, endpoints and the SSRF guard (dispatchers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatchers.backoff import Backoff, RetryPolicy, next_due, parse_retry_after
from dispatchers.guard import is_forbidden, literal_address
from dispatchers.targets import INVALID_URL_ENDPOINT, classify_status, endpoint_of
from tests.unit.support.dispatch import attempt_http, routed

pytestmark = pytest.mark.unit


def test_full_jitter_is_bounded_by_the_exponential_and_the_cap() -> None:
    backoff = Backoff(base_s=1.0, cap_s=300.0)
    assert [backoff.delay(n, rng=lambda: 1.0) for n in (1, 2, 3, 9, 10, 40)] == [
        1.0,
        2.0,
        4.0,
        256.0,
        300.0,
        300.0,
    ]
    assert backoff.delay(5, rng=lambda: 0.0) == 0.0


def test_gives_up_after_max_attempts_or_max_age() -> None:
    policy = RetryPolicy(max_attempts=3, max_age_s=60.0)
    backoff = Backoff(1.0, 300.0)
    due, _ = next_due(
        policy, backoff, attempts=2, first_attempt_at=0.0, now=10.0, retry_after_s=None
    )
    assert due is not None
    assert 10.0 <= due <= 12.0
    due, reason = next_due(
        policy, backoff, attempts=3, first_attempt_at=0.0, now=10.0, retry_after_s=None
    )
    assert due is None
    assert "3 attempts" in reason
    due, reason = next_due(
        policy, backoff, attempts=1, first_attempt_at=0.0, now=10.0, retry_after_s=120.0
    )
    assert due is None
    assert "max age" in reason


def test_retry_after_wins_when_longer() -> None:
    due, _ = next_due(
        RetryPolicy(8, 3600.0),
        Backoff(1.0, 300.0),
        attempts=1,
        first_attempt_at=0.0,
        now=0.0,
        retry_after_s=30.0,
        rng=lambda: 0.5,
    )
    assert due == 30.0


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (408, "retryable"),
        (429, "retryable"),
        (500, "retryable"),
        (503, "retryable"),
        (301, "permanent"),
        (400, "permanent"),
        (410, "permanent"),
    ],
)
def test_status_classification(status: int, outcome: str) -> None:
    assert classify_status(status, None).outcome == outcome


def test_429_carries_retry_after() -> None:
    assert classify_status(429, "12").retry_after_s == 12.0


@pytest.mark.parametrize(
    ("ref", "endpoint"),
    [
        ("https://hooks.example/a?token=x", "https://hooks.example:443"),
        # Userinfo is no part of the endpoint: one host, one circuit and one in-flight cap.
        ("https://alice:pw@HOOKS.example:443/b", "https://hooks.example:443"),
        ("http://[2001:db8::1]:8080/p", "http://[2001:db8::1]:8080"),
        ("http://[::1/p", INVALID_URL_ENDPOINT),
        ("http://hooks.example:99999/", INVALID_URL_ENDPOINT),
    ],
)
def test_http_endpoints_are_scheme_host_and_port(ref: str, endpoint: str) -> None:
    assert endpoint_of(routed("http", ref)) == endpoint


def test_kafka_endpoints_are_topics() -> None:
    assert endpoint_of(routed("kafka", "orders.created")) == "orders.created"


@pytest.mark.parametrize("ref", ["http://[::1/p", "http://hooks.example:99999/"])
async def test_an_unparseable_url_is_refused_without_a_request(ref: str) -> None:
    result = await attempt_http(ref, allow_private=False)
    assert (result.outcome, result.error) == ("permanent", "http target URL is not a valid URL")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.5",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fd00::1",
        "0.0.0.1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "224.0.0.1",
        "192.0.0.9",
        "192.88.99.1",
        "198.18.0.1",
        "240.0.0.1",
        # IPv6 forms that translate to or tunnel into a non-public IPv4 address.
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        # IPv6 prefixes that are not targets whatever they embed.
        "::808:808",
        "::7f00:1",
        "64:ff9b:1::808:808",
        "fec0::1",
        "3fff::1",
        "5f00::1",
        "ff02::1",
    ],
)
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert is_forbidden(address)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:4700::1111",
        "8.8.8.8",
        # NAT64 and 6to4 forms of a public IPv4 address reach that address.
        "64:ff9b::808:808",
        "2002:808:808::1",
        "::ffff:8.8.8.8",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden(address)


def test_literal_addresses_are_recognised() -> None:
    assert literal_address("[::1]") == "::1"
    assert literal_address("127.0.0.1") == "127.0.0.1"
    assert literal_address("example.com") is None
