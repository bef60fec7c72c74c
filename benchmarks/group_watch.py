"""Samples consumer groups twice a second: members, assigned partitions, committed offsets, lag.

From the samples, `ownership_gaps` finds how long each partition went without an owner in the
group's assignment (the group's view), and `stalls` how long each partition had records waiting
while its committed offset did not move (the work's view: a killed member still "owns" its
partitions until its session times out, but serves none of them).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from runtime.kafka import admin_client, standalone_consumer
from runtime.settings import Settings

SAMPLE_INTERVAL_S = 0.5


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    members: int
    assigned: frozenset[int]
    committed: dict[int, int]
    lag: dict[int, int]

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())


@dataclass
class GroupWatch:
    stage: str
    group: str
    topic: str
    samples: list[Sample] = field(default_factory=list)


async def _assigned(admin: AIOKafkaAdminClient, group: str, topic: str) -> tuple[int, set[int]]:
    members, partitions = 0, set()
    for response in await admin.describe_consumer_groups([group]):
        for described in response.to_object()["groups"]:
            if described["group"] != group or described["error_code"]:
                continue
            for member in described["members"]:
                members += 1
                raw = member.get("member_assignment")
                if isinstance(raw, bytes) and raw:
                    assignment = ConsumerProtocolMemberAssignment.decode(raw)
                    partitions |= {
                        tp.partition for tp in assignment.partitions() if tp.topic == topic
                    }
    return members, partitions


async def watch(settings: Settings, watches: list[GroupWatch], stop: asyncio.Event) -> None:
    """Sample every watched group until `stop` is set."""
    consumer = standalone_consumer(settings, *(w.topic for w in watches))
    admin = admin_client(settings)
    await consumer.start()
    await admin.start()
    try:
        partitions = list(consumer.assignment())
        while not stop.is_set():
            started = time.monotonic()
            ends = await consumer.end_offsets(partitions)
            for w in watches:
                mine = [tp for tp in partitions if tp.topic == w.topic]
                offsets = await admin.list_consumer_group_offsets(w.group, partitions=mine)
                committed = {
                    tp.partition: meta.offset
                    for tp, meta in offsets.items()
                    if meta is not None and meta.offset is not None and meta.offset >= 0
                }
                members, assigned = await _assigned(admin, w.group, w.topic)
                lag = {
                    tp.partition: max(0, ends[tp] - committed.get(tp.partition, 0)) for tp in mine
                }
                w.samples.append(Sample(time.time(), members, frozenset(assigned), committed, lag))
            await asyncio.sleep(max(0.0, SAMPLE_INTERVAL_S - (time.monotonic() - started)))
    finally:
        await admin.close()
        await consumer.stop()


def _longest_run(samples: list[Sample], bad: list[bool]) -> float:
    """The longest stretch of consecutive samples for which `bad` holds, in seconds."""
    longest, began = 0.0, None
    for sample, is_bad in zip(samples, bad, strict=True):
        if is_bad and began is None:
            began = sample.at
        elif not is_bad and began is not None:
            longest = max(longest, sample.at - began)
            began = None
    if began is not None:
        longest = max(longest, samples[-1].at - began)
    return longest


def ownership_gaps(w: GroupWatch) -> dict[int, float]:
    """Per partition, the longest time no member of the group had it assigned."""
    partitions = sorted(w.samples[0].lag) if w.samples else []
    return {
        p: _longest_run(w.samples, [p not in s.assigned for s in w.samples]) for p in partitions
    }


def stalls(w: GroupWatch, start: float, end: float) -> dict[int, float]:
    """Per partition, the longest time between `start` and `end` that records waited while its
    committed offset stood still.

    A lag of one is not waiting: on a transactional topic the last offset of a caught-up
    partition is a transaction marker, which no consumer commits past.
    """
    samples = [s for s in w.samples if start <= s.at < end]
    partitions = sorted(samples[0].lag) if samples else []
    result = {}
    for p in partitions:
        bad = [False]
        for before, after in itertools.pairwise(samples):
            standing = after.committed.get(p) == before.committed.get(p)
            bad.append(standing and after.lag.get(p, 0) > 1)
        result[p] = _longest_run(samples, bad)
    return result
