"""The seek fence: a batch iterated across a seek to committed offsets is read again in full.

faust's own fetch (`getmany`) and seek are the seams replaced here; the fence's logic is what
runs. On the real broker the SIGKILL test in tests/integration covers the whole path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from processors.faust_engine.transport import SeekFencedConsumer

pytestmark = pytest.mark.unit

RAW = TP("raw-events", 0)
COMMITTED = 70


def consumer_reading(monkeypatch: pytest.MonkeyPatch, batch: list[int]) -> SeekFencedConsumer:
    """A fenced consumer whose faust fetch returns `batch` and whose seek goes to COMMITTED."""

    async def fetched(self: Any, wait_s: float) -> AsyncIterator[tuple[TP, Any]]:
        for offset in batch:
            yield RAW, SimpleNamespace(offset=offset)

    async def seek_to_committed(self: Any) -> None:
        self._read_offset[RAW] = COMMITTED

    monkeypatch.setattr(faust_aiokafka.Consumer, "getmany", fetched)
    monkeypatch.setattr(faust_aiokafka.Consumer, "perform_seek", seek_to_committed)
    monkeypatch.setattr(SeekFencedConsumer, "assignment", lambda self: {RAW})
    consumer = SeekFencedConsumer.__new__(SeekFencedConsumer)
    consumer.seeks = 0
    consumer._read_offset = defaultdict(lambda: None)
    consumer._acked = defaultdict(list)
    consumer._acked_index = defaultdict(set)
    consumer._gap = defaultdict(list)
    return consumer


async def deliver_only(offset: int) -> None:
    pass


async def drain(
    consumer: SeekFencedConsumer, delivering: Callable[[int], Awaitable[None]] = deliver_only
) -> list[int]:
    """faust's fetch loop: deliver each record, then store it as the partition's read offset."""
    handed = []
    async for tp, message in consumer.getmany(timeout=1.0):
        handed.append(message.offset)
        await delivering(message.offset)
        consumer._read_offset[tp] = message.offset
    return handed


async def test_a_whole_batch_is_handed_over_when_no_seek_happens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = consumer_reading(monkeypatch, [200, 201, 202])
    assert await drain(consumer) == [200, 201, 202]
    assert (consumer._read_offset[RAW], consumer.seeks) == (202, 0)


async def test_a_seek_while_a_record_is_delivered_stops_the_batch_and_seeks_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = consumer_reading(monkeypatch, [200, 201, 202, 203])

    async def seek_during(offset: int) -> None:
        if offset == 201:
            await consumer.perform_seek()

    assert await drain(consumer, seek_during) == [200, 201]
    # Sought again after the fetch loop stored 201: the records from the committed offset on
    # are read again, instead of being dropped as older than the read offset (or, had aiokafka
    # already fetched past them, skipped for good).
    assert (consumer._read_offset[RAW], consumer.seeks) == (COMMITTED, 2)


async def test_a_seek_during_a_batch_s_last_record_still_seeks_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = consumer_reading(monkeypatch, [300])

    async def seek_during(offset: int) -> None:
        await consumer.perform_seek()

    assert await drain(consumer, seek_during) == [300]
    assert (consumer._read_offset[RAW], consumer.seeks) == (COMMITTED, 2)


async def test_the_next_batch_after_a_seek_is_handed_over_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = consumer_reading(monkeypatch, [70, 71])
    await consumer.perform_seek()
    assert await drain(consumer) == [70, 71]
    assert consumer.seeks == 1


async def test_a_seek_forgets_acknowledgements_and_skipped_ranges_recorded_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = consumer_reading(monkeypatch, [])
    consumer._acked[RAW] = [200, 201]
    consumer._acked_index[RAW] = {200, 201}
    consumer._gap[RAW] = ["71..199"]

    await consumer.perform_seek()

    # A commit past offset 70 now needs offset 70 itself read and acknowledged again.
    assert (consumer._acked[RAW], consumer._acked_index[RAW], consumer._gap[RAW]) == ([], set(), [])
    assert consumer._read_offset[RAW] == COMMITTED
