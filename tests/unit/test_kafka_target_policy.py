"""Which topics kafka targets may write, at save time (the policy) and at delivery time (the
kafka target refuses before producing, so the delivery is dead-lettered with the reason)."""

from __future__ import annotations

import re

import pytest

from dispatchers.targets import Targets
from runtime.kafka_targets import KafkaTargetPolicy
from tests.unit.support.dispatch import RecordingProducer, policy, routed

pytestmark = pytest.mark.unit

POLICY = KafkaTargetPolicy("triggerline")


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("triggerline.trigger-config", "prefix"),
        ("triggerline.routed-events", "prefix"),
        ("triggerline.raw-events", "prefix"),
        ("__consumer_offsets", "internal"),
        ("__transaction_state", "internal"),
    ],
)
def test_internal_topics_are_refused(topic: str, reason: str) -> None:
    refusal = POLICY.refusal(topic)
    assert refusal is not None
    assert reason in refusal


def test_other_topics_pass_unless_a_pattern_restricts_them() -> None:
    assert POLICY.refusal("orders") is None
    assert POLICY.refusal("triggerline-orders") is None
    restricted = KafkaTargetPolicy("triggerline", re.compile(r"tenant\.[a-z]+"))
    assert restricted.refusal("tenant.orders") is None
    # A full match: a pattern that matches a prefix of the name is not enough.
    for topic in ("tenant.orders.x", "orders", "x.tenant.orders"):
        refusal = restricted.refusal(topic)
        assert refusal is not None
        assert "TRIGGERLINE_KAFKA_TARGET_TOPIC_PATTERN" in refusal


async def test_the_kafka_target_refuses_a_forbidden_topic_at_delivery_time() -> None:
    producer = RecordingProducer()
    targets = Targets(
        producer,
        allow_private=False,
        max_connections=1,
        kafka_topics=POLICY,
    )
    kafka = policy(signing_key=None)

    refused = await targets.attempt(routed("kafka", "triggerline.trigger-config"), b"{}", kafka)
    assert refused.outcome == "permanent"
    assert refused.error is not None
    assert "prefix" in refused.error
    assert producer.sent == []

    delivered = await targets.attempt(routed("kafka", "orders"), b"{}", kafka)
    assert delivered.outcome == "delivered"
    assert [sent.topic for sent in producer.sent] == ["orders"]
