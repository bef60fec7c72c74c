"""A config change (pause, filter update, delete) reaches every processor worker within seconds,
on both engines."""

from __future__ import annotations

import uuid

import pytest

from runtime.settings import Settings
from schemas.records import DeliveryLogRecord
from schemas.triggers import TriggerConfig
from tests.integration.support.polling import eventually
from tests.integration.support.processor_outputs import processor_decisions
from tests.integration.support.processor_records import (
    Records,
    slack_message,
    slack_trigger,
    triggers_on_every_partition,
)
from tests.integration.support.processor_workers import ENGINES, processor_workers

pytestmark = pytest.mark.integration

# How soon after the change every worker must apply it.
WITHIN_S = 10.0


@pytest.mark.parametrize("engine", ENGINES)
async def test_pause_filter_update_and_delete_reach_every_worker(
    settings: Settings, engine: str
) -> None:
    # One trigger per raw partition, so both workers own triggers of every kind of change.
    triggers = triggers_on_every_partition()
    configs = [slack_trigger(t, filter='event.text != "never"') for t in triggers]
    async with Records(settings) as records:
        for config in configs:
            await records.config(config)
        with processor_workers(settings, 2, engine):
            before = {t: f"Ev{uuid.uuid4().hex}" for t in triggers}
            await records.raw(*(slack_message(t, e) for t, e in before.items()))
            await eventually(
                lambda: outcomes_for(settings, set(before.values()), "routed"), timeout_s=90
            )

            changed: dict[str, tuple[str, str]] = {}
            for n, config in enumerate(configs):
                changed[config.trigger_id] = await change(records, config, n % 3)

            async def every_change_applied() -> bool | None:
                # A fresh event per trigger each round: the first ones may beat the change.
                probes = {t: f"Ev{uuid.uuid4().hex}" for t in triggers}
                await records.raw(*(slack_message(t, e) for t, e in probes.items()))
                decisions = await processor_decisions(settings)
                # The delivery log is partitioned by event id: order decisions by time.
                latest = {d.trigger_id: d for d in sorted(decisions, key=lambda d: d.at)}
                return True if all(matches(latest.get(t), changed[t]) for t in triggers) else None

            await eventually(every_change_applied, timeout_s=WITHIN_S, interval_s=1.0)


async def change(records: Records, config: TriggerConfig, kind: int) -> tuple[str, str]:
    """Applies one of three changes; returns the (outcome, reason) events get afterwards."""
    if kind == 0:
        await records.config(slack_trigger(config.trigger_id, revision=2, status="paused"))
        return "ignored", "trigger paused"
    if kind == 1:
        await records.config(
            slack_trigger(config.trigger_id, revision=2, filter='event.text == "never"')
        )
        return "skipped", "filter returned false"
    await records.delete(config.trigger_id)
    return "ignored", "trigger no longer exists"


def matches(decision: DeliveryLogRecord | None, expected: tuple[str, str]) -> bool:
    return decision is not None and (decision.outcome, decision.reason) == expected


async def outcomes_for(settings: Settings, event_ids: set[str], outcome: str) -> bool | None:
    decisions = await processor_decisions(settings)
    done = {d.event_id for d in decisions if d.outcome == outcome}
    return True if event_ids <= done else None
