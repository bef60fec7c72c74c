"""The stripe kind, cross-checked with Stripe's own signer and verifier (the `stripe` package)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import stripe

from kinds.base import JSON, Envelope, EnvelopeRejected, Normalized, WebhookRequest
from kinds.stripe import KIND as STRIPE
from runtime.signatures import SignatureRejected
from schemas.records import RawEvent

pytestmark = pytest.mark.unit

SECRET = "whsec_test_c2VjcmV0IGZvciB0ZXN0cw"
NOW = 1_765_000_000
EVENT = {
    "id": "evt_1QxY",
    "object": "event",
    "type": "payment_intent.succeeded",
    "created": NOW - 5,
    "data": {"object": {"id": "pi_3Mt", "object": "payment_intent", "amount": 2000}},
}
BODY = orjson.dumps(EVENT)


def signed_by_stripe(body: bytes = BODY, secret: str = SECRET, at: int = NOW) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, at)
    return {"stripe-signature": header}


def test_a_header_made_by_stripe_verifies() -> None:
    STRIPE.verify(WebhookRequest(signed_by_stripe(), BODY), [SECRET], NOW)


def test_one_matching_v1_among_several_verifies_as_stripe_says() -> None:
    # Stripe sends several v1 entries while an endpoint's secret is being rolled.
    old = signed_by_stripe(secret="whsec_old")["stripe-signature"].split(",")[1]
    new = signed_by_stripe()["stripe-signature"]
    header = f"{new.split(',')[0]},{old},{new.split(',')[1]},v0=ignored"
    assert stripe.WebhookSignature.verify_header(BODY.decode(), header, SECRET, tolerance=None)
    STRIPE.verify(WebhookRequest({"stripe-signature": header}, BODY), [SECRET], NOW)


def test_the_previous_secret_verifies_during_rotation() -> None:
    STRIPE.verify(
        WebhookRequest(signed_by_stripe(secret="whsec_old"), BODY), [SECRET, "whsec_old"], NOW
    )
    assert STRIPE.signing_secrets == ("STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET_PREVIOUS")


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamps_outside_the_tolerance_are_stale(skew: int) -> None:
    with pytest.raises(SignatureRejected) as rejected:
        STRIPE.verify(WebhookRequest(signed_by_stripe(at=NOW + skew), BODY), [SECRET], NOW)
    assert rejected.value.reason == "stale_timestamp"


@pytest.mark.parametrize("skew", [-300, 300])
def test_timestamps_at_the_edge_of_the_tolerance_verify(skew: int) -> None:
    STRIPE.verify(WebhookRequest(signed_by_stripe(at=NOW + skew), BODY), [SECRET], NOW)


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({}, BODY, "missing_headers"),
        ({"stripe-signature": "v1=" + "0" * 64}, BODY, "malformed_timestamp"),
        ({"stripe-signature": f"t={'9' * 400},v1=00"}, BODY, "malformed_timestamp"),
        ({"stripe-signature": f"t={NOW}"}, BODY, "mismatch"),
        (signed_by_stripe(), BODY + b" ", "mismatch"),
        (signed_by_stripe(secret="whsec_other"), BODY, "mismatch"),
    ],
)
def test_requests_not_signed_with_the_secret_are_refused(
    headers: dict[str, str], body: bytes, reason: str
) -> None:
    with pytest.raises(SignatureRejected) as rejected:
        STRIPE.verify(WebhookRequest(headers, body), [SECRET], NOW)
    assert rejected.value.reason == reason


def test_the_event_id_comes_from_the_body() -> None:
    assert STRIPE.parse(WebhookRequest({}, BODY, JSON)) == Envelope("evt_1QxY", "id")


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-www-form-urlencoded", BODY, 415),
        (JSON, b"[]", 400),
        (JSON, orjson.dumps({"type": "charge.succeeded"}), 400),
        (JSON, orjson.dumps({"id": "evt_1", "type": 7}), 400),
    ],
)
def test_bodies_that_are_no_stripe_event_are_refused(
    content_type: str, body: bytes, status: int
) -> None:
    with pytest.raises(EnvelopeRejected) as rejected:
        STRIPE.parse(WebhookRequest({}, body, content_type))
    assert rejected.value.status == status


def raw(event: dict[str, Any]) -> RawEvent:
    return RawEvent(
        id="raw-1",
        trigger_id="t1",
        project_id="p1",
        definition="stripe",
        received_at=datetime(2026, 12, 1, tzinfo=UTC),
        content_type=JSON,
        body=orjson.dumps(event).decode(),
    )


def test_an_event_is_typed_timed_and_correlated_by_its_object() -> None:
    event = STRIPE.normalize(raw(EVENT), None)
    assert isinstance(event, Normalized)
    assert (event.event_id, event.event_type, event.correlation_id) == (
        "evt_1QxY",
        "payment_intent.succeeded",
        "pi_3Mt",
    )
    assert event.time == datetime.fromtimestamp(NOW - 5, UTC)
    assert event.data == EVENT


@pytest.mark.parametrize("created", [10**15, -1, "yesterday", True])
def test_an_event_without_an_object_or_a_usable_time_still_normalizes(created: object) -> None:
    event = STRIPE.normalize(
        raw({"id": "evt_2", "type": "balance.available", "created": created}), None
    )
    assert isinstance(event, Normalized)
    assert event.correlation_id == "evt_2"
    assert event.time == datetime(2026, 12, 1, tzinfo=UTC)


def test_a_secret_that_is_no_endpoint_secret_is_named() -> None:
    assert STRIPE.secret_problem("STRIPE_WEBHOOK_SECRET", "sk_live_123") is not None
    assert STRIPE.secret_problem("STRIPE_WEBHOOK_SECRET", SECRET) is None
    assert STRIPE.secret_problem("OTHER", "sk_live_123") is None
