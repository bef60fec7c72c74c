"""The dispatcher loop over an in-memory consumer and a gated deliverer: records of one lane (key
and destination) are delivered in order and different lanes concurrently, so a held-back
destination never holds another's records of the same key; an offset is committed only once every
record below it is finished, a successor skips what the commit says was finished, a partition
with too much held-back work is paused until it drains, and a failing delivery stops the loop."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition

from dispatchers.consumer import CommittedOffsets, Dispatcher
from dispatchers.tracker import PartitionTracker, RetryState
from dispatchers.work_item import WorkItem
from runtime.settings import Settings
from schemas.topics import DESTINATION_HEADER

pytestmark = pytest.mark.unit

TP = TopicPartition("unit.routed-events", 0)
WAIT_S = 5.0


@dataclass(frozen=True)
class Fetched:
    """The fields of aiokafka's ConsumerRecord that the dispatcher reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def fetched(offset: int, key: str, destination: str | None = None) -> Fetched:
    """A routed record; `destination` is its DESTINATION_HEADER, None for a record without one."""
    headers = () if destination is None else ((DESTINATION_HEADER, destination.encode()),)
    return Fetched(TP.topic, TP.partition, offset, key.encode(), b"{}", headers)


class QueuedConsumer:
    """Kafka's consumer seam: `getmany` hands out the batches a test queues, waiting up to its
    timeout as the real one does; pauses and resumes are kept in order, and so are commits."""

    def __init__(self) -> None:
        self._batches: asyncio.Queue[list[Fetched]] = asyncio.Queue()
        self.flow: list[str] = []
        self.commits: list[tuple[int, str]] = []
        self.changed = asyncio.Condition()

    def fetch(self, *records: Fetched) -> None:
        self._batches.put_nowait(list(records))

    async def getmany(
        self, *, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Fetched]]:
        try:
            batch = await asyncio.wait_for(self._batches.get(), timeout_ms / 1000)
        except TimeoutError:
            return {}
        return {TP: batch[:max_records]}

    def pause(self, tp: TopicPartition) -> None:
        self.flow.append(f"pause {tp.partition}")

    def resume(self, tp: TopicPartition) -> None:
        self.flow.append(f"resume {tp.partition}")

    async def commit(self, offsets: dict[TopicPartition, tuple[int, str]]) -> None:
        async with self.changed:
            self.commits.append(offsets[TP])
            self.changed.notify_all()

    async def until_committed(self, offset: int) -> None:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: any(o == offset for o, _ in self.commits)),
                WAIT_S,
            )


@dataclass(frozen=True)
class Committed:
    offset: int
    metadata: str


class CommittedAdmin:
    """Kafka's admin seam: the group's committed offsets, as a predecessor left them."""

    def __init__(self, committed: dict[TopicPartition, tuple[int, str]] | None = None) -> None:
        self._committed = committed or {}

    async def list_consumer_group_offsets(
        self, group: str, *, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, Committed]:
        return {tp: Committed(*self._committed[tp]) for tp in partitions if tp in self._committed}


class GatedDeliverer:
    """Delivers at once, except offsets a test holds until it opens their gate; a held offset
    first reports a retry state, as a delivery waiting to retry does."""

    def __init__(self, *held: int, failing: int | None = None) -> None:
        self.gates = {offset: asyncio.Event() for offset in held}
        self._failing = failing
        self.started: list[int] = []
        self.finished: list[int] = []
        self.keys: dict[bytes, list[int]] = defaultdict(list)
        self._progress = asyncio.Condition()

    async def deliver_record(
        self,
        item: WorkItem,
        slot: AbstractAsyncContextManager[None],
        on_retry: Callable[[RetryState], None],
    ) -> bool:
        offset = item.position.offset
        await self._note(self.started, offset)
        if offset == self._failing:
            raise RuntimeError("a bug in delivery")
        gate = self.gates.get(offset)
        if gate is not None:
            on_retry(RetryState(attempts=1, first_attempt_at=1_000.0, due_at=2_000.0))
            await gate.wait()
        async with slot:
            self.keys[item.key or b""].append(offset)
        await self._note(self.finished, offset)
        return True

    async def _note(self, seen: list[int], offset: int) -> None:
        async with self._progress:
            seen.append(offset)
            self._progress.notify_all()

    async def until(self, done: Callable[[], bool]) -> None:
        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(done), WAIT_S)


def dispatcher_settings(**changes: object) -> Settings:
    return Settings().override(
        dispatcher__commit_interval_s=0.01,
        # Stopping gives back whatever is in flight at once.
        dispatcher__shutdown_deadline_s=0.0,
        **changes,
    )


@dataclass
class Running:
    dispatcher: Dispatcher
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.dispatcher.stop()
        await asyncio.wait_for(self.task, WAIT_S)


async def running(
    consumer: QueuedConsumer,
    deliverer: GatedDeliverer,
    settings: Settings | None = None,
    committed: dict[TopicPartition, tuple[int, str]] | None = None,
) -> Running:
    dispatcher = Dispatcher(
        settings or dispatcher_settings(),
        consumer,
        deliverer,
        asyncio.Event(),
        CommittedOffsets(CommittedAdmin(committed), "unit.dispatchers"),
    )
    await dispatcher.on_partitions_assigned([TP])
    return Running(dispatcher, asyncio.create_task(dispatcher.run()))


async def test_one_key_is_delivered_in_order_while_other_keys_go_ahead() -> None:
    consumer = QueuedConsumer()
    deliverer = GatedDeliverer(0)
    loop = await running(consumer, deliverer)
    consumer.fetch(fetched(0, "a"), fetched(1, "a"), fetched(2, "b"), fetched(3, "c"))

    # Key a's first record is held; the other keys are delivered meanwhile.
    await deliverer.until(lambda: {2, 3} <= set(deliverer.finished))
    assert 1 not in deliverer.started
    deliverer.gates[0].set()
    await deliverer.until(lambda: len(deliverer.finished) == 4)
    await consumer.until_committed(4)
    await loop.stop()

    assert deliverer.keys[b"a"] == [0, 1]


async def test_a_held_destination_does_not_hold_another_destinations_records_of_its_key() -> None:
    consumer = QueuedConsumer()
    # Offset 0 is "slow"'s first record, held as if waiting for its rate limit or circuit.
    deliverer = GatedDeliverer(0)
    loop = await running(consumer, deliverer)
    consumer.fetch(
        fetched(0, "conv", "slow"),
        fetched(1, "conv", "fast"),
        fetched(2, "conv", "slow"),
        fetched(3, "conv", "fast"),
        fetched(4, "conv", "fast"),
    )

    # The same correlation id's records for "fast" go ahead, in order; "slow"'s next one waits.
    await deliverer.until(lambda: {1, 3, 4} <= set(deliverer.finished))
    assert 2 not in deliverer.started
    assert [o for o in deliverer.finished if o in (1, 3, 4)] == [1, 3, 4]
    deliverer.gates[0].set()
    await deliverer.until(lambda: len(deliverer.finished) == 5)
    await consumer.until_committed(5)
    await loop.stop()

    # Within the "slow" lane, offset order held.
    assert [o for o in deliverer.finished if o in (0, 2)] == [0, 2]


async def test_records_without_a_destination_header_share_the_default_lane() -> None:
    consumer = QueuedConsumer()
    deliverer = GatedDeliverer(0)
    loop = await running(consumer, deliverer)
    # Written before destinations: no header, so the lane of destination "default".
    consumer.fetch(fetched(0, "conv"), fetched(1, "conv", "default"), fetched(2, "conv", "other"))

    await deliverer.until(lambda: 2 in deliverer.finished)
    assert 1 not in deliverer.started, "a headerless record and a 'default' one share a lane"
    deliverer.gates[0].set()
    await deliverer.until(lambda: len(deliverer.finished) == 3)
    await loop.stop()

    assert deliverer.keys[b"conv"] == [2, 0, 1]


async def test_an_offset_is_committed_only_once_every_record_below_it_is_finished() -> None:
    consumer = QueuedConsumer()
    deliverer = GatedDeliverer(0)
    loop = await running(consumer, deliverer)
    consumer.fetch(fetched(0, "a"), fetched(1, "b"), fetched(2, "c"))
    await deliverer.until(lambda: {1, 2} <= set(deliverer.finished))
    await loop.stop()

    # Record 0 was given back unfinished: no commit ever passed it.
    assert consumer.commits
    assert {offset for offset, _ in consumer.commits} == {0}
    offset, metadata = consumer.commits[-1]
    successor = PartitionTracker(offset, metadata)
    assert [successor.finished_before(o) for o in (0, 1, 2)] == [False, True, True]
    assert successor.retries[0].attempts == 1


async def test_a_successor_delivers_only_what_the_commit_left_unfinished() -> None:
    before = PartitionTracker(0)
    for offset in (0, 1, 2):
        before.add(offset)
    before.finish(1)
    consumer = QueuedConsumer()
    deliverer = GatedDeliverer()
    loop = await running(consumer, deliverer, committed={TP: before.commit_point()})
    consumer.fetch(fetched(0, "a"), fetched(1, "b"), fetched(2, "c"))
    await consumer.until_committed(3)
    await loop.stop()

    assert sorted(deliverer.started) == [0, 2]


async def test_a_partition_with_too_much_held_back_work_is_paused_until_it_drains() -> None:
    consumer = QueuedConsumer()
    deliverer = GatedDeliverer(0)
    loop = await running(
        consumer, deliverer, dispatcher_settings(dispatcher__max_pending_per_partition=2)
    )
    consumer.fetch(fetched(0, "a"), fetched(1, "a"), fetched(2, "a"))
    await deliverer.until(lambda: deliverer.started == [0])
    assert consumer.flow == ["pause 0"]

    deliverer.gates[0].set()
    await consumer.until_committed(3)
    await loop.stop()

    assert consumer.flow == ["pause 0", "resume 0"]


async def test_a_failing_delivery_stops_the_loop_and_leaves_its_record_uncommitted() -> None:
    consumer = QueuedConsumer()
    deliverer = GatedDeliverer(failing=1)
    loop = await running(consumer, deliverer)
    consumer.fetch(fetched(0, "a"), fetched(1, "b"))

    with pytest.raises(RuntimeError, match="a delivery worker failed"):
        await asyncio.wait_for(loop.task, WAIT_S)
    assert all(offset <= 1 for offset, _ in consumer.commits)
