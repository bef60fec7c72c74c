"""The consumer lag of a stage's own group, as the `triggerline_consumer_lag` gauge.

Each worker reports the partitions it owns, so the group's lag is the sum over its workers and no
partition is reported twice once a rebalance has settled. A partition's lag is its end offset
minus the group's committed offset (minus its start, when the group never committed), the same
figure `triggerline status` shows. On a topic written in transactions the end offset counts the
commit markers too, so a caught-up group can show a lag of a few.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka.errors import KafkaError

from runtime.metrics import CONSUMER_LAG

log = logging.getLogger("triggerline.consumer_lag")

LAG_INTERVAL_S = 5.0

# (topic, partition); aiokafka's and faust's TopicPartition are both such named tuples.
Partition = tuple[str, int]


class LagGauge:
    """This worker's rows of the gauge: publishing a new set of partitions removes the rows of
    partitions it no longer owns, and leaves other consumers' rows in the process alone."""

    def __init__(self) -> None:
        self._reported: set[tuple[str, str]] = set()

    def publish(self, lags: Mapping[Partition, int]) -> None:
        current = {(topic, str(partition)): lag for (topic, partition), lag in lags.items()}
        for labels in self._reported - current.keys():
            CONSUMER_LAG.remove(*labels)
        for labels, lag in current.items():
            CONSUMER_LAG.labels(*labels).set(lag)
        self._reported = set(current)


async def measure_lag(consumer: Any) -> dict[Partition, int]:
    """The lag of every partition `consumer` (an aiokafka group member) owns."""
    owned = sorted(consumer.assignment())
    if not owned:
        return {}
    ends = await consumer.end_offsets(owned)
    committed = await asyncio.gather(*(consumer.committed(tp) for tp in owned))
    never = [tp for tp, offset in zip(owned, committed, strict=True) if offset is None]
    starts = await consumer.beginning_offsets(never) if never else {}
    return {
        (tp.topic, tp.partition): max(0, ends[tp] - (starts[tp] if offset is None else offset))
        for tp, offset in zip(owned, committed, strict=True)
    }


class ConsumerLagReporter:
    """Measures a group member's lag every `interval_s` until cancelled."""

    def __init__(self, consumer: Any, interval_s: float = LAG_INTERVAL_S) -> None:
        self._consumer = consumer
        self._interval_s = interval_s
        self._gauge = LagGauge()

    async def run(self) -> None:
        try:
            while True:
                await self.report()
                await asyncio.sleep(self._interval_s)
        finally:
            self._gauge.publish({})

    async def report(self) -> None:
        try:
            # A broker that does not answer must not stall the next measurement.
            async with asyncio.timeout(self._interval_s):
                lags = await measure_lag(self._consumer)
        except (KafkaError, TimeoutError) as exc:
            log.warning("consumer lag not measured", extra={"error": str(exc)})
            return
        self._gauge.publish(lags)
