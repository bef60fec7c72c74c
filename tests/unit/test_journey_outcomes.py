"""An event's outcome per destination and as a whole, from its delivery-log steps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.api.journeys import IN_PROGRESS, outcomes
from ingest.registry.deliveries import DeliveryRow

pytestmark = pytest.mark.unit

AT = datetime(2026, 12, 5, tzinfo=UTC)


def step(stage: str, outcome: str, destination: str | None = None) -> DeliveryRow:
    return DeliveryRow(
        log_partition=0,
        log_offset=0,
        event_id="ev",
        trigger_id="t",
        stage=stage,
        outcome=outcome,
        at=AT,
        correlation_id="c",
        target_kind=None,
        target_ref=None,
        attempt=0,
        reason=None,
        http_status=None,
        error=None,
        latency_ms=None,
        replay=False,
        received_at=AT,
        destination=destination,
    )


FANNED_OUT = [
    step("processor", "routed", "bot"),
    step("processor", "routed", "audit"),
    step("processor", "skipped", "deploys"),
]


def test_delivered_only_when_every_routed_destination_delivered() -> None:
    partly = outcomes([*FANNED_OUT, step("dispatcher", "delivered", "bot")])
    assert partly.event == IN_PROGRESS
    assert partly.destinations == {"bot": "delivered", "audit": IN_PROGRESS, "deploys": "skipped"}
    retrying = [*FANNED_OUT, step("dispatcher", "delivered", "bot")]
    retrying.append(step("dispatcher", "retrying", "audit"))
    assert outcomes(retrying).event == IN_PROGRESS
    done = outcomes([*retrying, step("dispatcher", "delivered", "audit")])
    assert done.event == "delivered"
    assert done.destinations["audit"] == "delivered"


def test_a_dead_letter_at_one_destination_is_the_event_outcome() -> None:
    found = outcomes(
        [
            *FANNED_OUT,
            step("dispatcher", "delivered", "bot"),
            step("dispatcher", "failed", "audit"),
            step("dispatcher", "dead_lettered", "audit"),
        ]
    )
    assert (found.event, found.destinations["audit"]) == ("dead_lettered", "dead_lettered")


def test_unrouted_everywhere_takes_the_destinations_decision_errors_first() -> None:
    found = outcomes([step("processor", "skipped", "a"), step("processor", "transform_error", "b")])
    assert found.event == "transform_error"
    assert outcomes([step("processor", "skipped", "a")]).event == "skipped"


def test_a_decision_about_the_whole_event_is_its_outcome() -> None:
    found = outcomes([step("processor", "skipped"), step("processor", "duplicate")])
    assert (found.event, found.destinations) == ("skipped", {})


def test_steps_from_before_destinations_belong_to_default() -> None:
    found = outcomes([step("processor", "routed"), step("dispatcher", "delivered")])
    assert (found.event, found.destinations) == ("delivered", {"default": "delivered"})
