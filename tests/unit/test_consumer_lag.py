"""The consumer-lag gauge: a partition's end minus the group's committed offset (or its start
when the group never committed), for the partitions a worker owns and no others."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from runtime.consumer_lag import LagGauge, measure_lag

pytestmark = pytest.mark.unit

TOPIC = "unit-lag.routed-events"


class OwningConsumer:
    """The four things the measurement asks of an aiokafka group member."""

    def __init__(self, ends: dict[int, int], committed: dict[int, int], starts: dict[int, int]):
        self.owned = {TopicPartition(TOPIC, p) for p in ends}
        self.ends = ends
        self.commits = committed
        self.starts = starts

    def assignment(self) -> set[TopicPartition]:
        return self.owned

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp.partition] for tp in tps}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.commits.get(tp.partition)

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.starts[tp.partition] for tp in tps}


def gauge_rows(topic: str) -> dict[str, float]:
    return {
        sample.labels["partition"]: sample.value
        for metric in REGISTRY.collect()
        if metric.name == "triggerline_consumer_lag"
        for sample in metric.samples
        if sample.labels["topic"] == topic
    }


async def test_lag_counts_from_the_committed_offset_or_else_the_start() -> None:
    consumer = OwningConsumer(ends={0: 120, 1: 40, 2: 9}, committed={0: 100, 2: 9}, starts={1: 15})

    assert await measure_lag(consumer) == {(TOPIC, 0): 20, (TOPIC, 1): 25, (TOPIC, 2): 0}


async def test_a_worker_that_owns_nothing_measures_nothing() -> None:
    assert await measure_lag(OwningConsumer(ends={}, committed={}, starts={})) == {}


def test_partitions_no_longer_owned_leave_the_gauge_and_others_rows_stay() -> None:
    mine, theirs = LagGauge(), LagGauge()
    theirs.publish({("unit-lag.delivery-log", 0): 3})

    mine.publish({(TOPIC, 0): 5, (TOPIC, 1): 7})
    assert gauge_rows(TOPIC) == {"0": 5, "1": 7}

    mine.publish({(TOPIC, 1): 2})
    assert gauge_rows(TOPIC) == {"1": 2}
    assert gauge_rows("unit-lag.delivery-log") == {"0": 3}

    mine.publish({})
    theirs.publish({})
    assert gauge_rows(TOPIC) == {}
    assert gauge_rows("unit-lag.delivery-log") == {}
