"""Stripe events through a real ingest and real processors on real Kafka and PostgreSQL.

The signature header is made by the test and checked with Stripe's own verifier first."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest

from runtime.settings import Settings
from tests.integration.support.kind_journeys import KindPipeline, kind_pipeline
from tests.support.signing import stripe_headers

pytestmark = pytest.mark.integration

SECRET = "whsec_stripe_e2e_secret"
OLD_SECRET = "whsec_stripe_e2e_rolled_out"


def stripe_event(event_type: str, object_id: str) -> bytes:
    return orjson.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": event_type,
            "created": 1_765_000_000,
            "data": {"object": {"id": object_id, "object": event_type.partition(".")[0]}},
        }
    )


async def probe(pipeline: KindPipeline) -> httpx.Response:
    body = stripe_event("customer.created", "cus_probe")
    return await pipeline.post(body, stripe_headers(body, SECRET))


async def test_stripe_events_verify_with_stripes_scheme_and_are_correlated_by_object(
    settings: Settings,
) -> None:
    config = {"event_types": ["payment_intent.succeeded", "payment_intent.created"]}
    secrets = {"STRIPE_WEBHOOK_SECRET": SECRET}
    async with kind_pipeline(settings, "stripe", secrets, config, probe) as pipeline:
        created = stripe_event("payment_intent.created", "pi_1")
        succeeded = stripe_event("payment_intent.succeeded", "pi_1")
        refunded = stripe_event("charge.refunded", "ch_1")
        for body in (created, succeeded, refunded):
            # Signed with the current and a rolled-out secret, as Stripe does during a roll.
            answer = await pipeline.post(body, stripe_headers(body, SECRET, OLD_SECRET))
            assert answer.status_code == 200, answer.text

        forged = await pipeline.post(created, stripe_headers(created, OLD_SECRET))
        assert forged.status_code == 401
        unsigned = await pipeline.post(created, {"content-type": "application/json"})
        assert unsigned.status_code == 401

        ids = {
            name: orjson.loads(body)["id"]
            for name, body in (
                ("created", created),
                ("succeeded", succeeded),
                ("refunded", refunded),
            )
        }
        decisions = await pipeline.decisions(set(ids.values()))
        routed = {event.id: event for event in await pipeline.routed()}

    for name in ("created", "succeeded"):
        assert decisions[ids[name]].outcome == "routed"
        assert routed[ids[name]].subject == "pi_1"
    assert routed[ids["succeeded"]].type == "stripe.payment_intent.succeeded"
    assert decisions[ids["refunded"]].outcome == "skipped"
