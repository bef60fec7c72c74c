"""`triggerline groups reset` moves a stopped stage's consumer group to a time, and only then."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer

from deploy.group_reset import GroupResetError, apply_reset, consumer_stage, plan_reset
from runtime.kafka import admin_client, durable_producer, group_consumer
from runtime.settings import Settings
from tests.integration.support.cli import triggerline
from tests.integration.support.polling import eventually

pytestmark = pytest.mark.integration

STAGE = consumer_stage("processors")
# Records go to the first partitions only, so the others have none at or after any time.
FILLED_PARTITIONS = 4
RECORDS = 12


@dataclass(frozen=True, slots=True)
class Written:
    partition: int
    offset: int
    timestamp_ms: int


async def write_records(settings: Settings) -> list[Written]:
    """RECORDS records a second apart, round-robin over FILLED_PARTITIONS, in time order."""
    topic = STAGE.topic.name(settings.topics.prefix)
    first_ms = int((datetime.now(UTC) - timedelta(minutes=10)).timestamp()) * 1000
    producer = durable_producer(settings)
    await producer.start()
    written = []
    try:
        for index in range(RECORDS):
            sent = await producer.send_and_wait(
                topic,
                f"record {index}".encode(),
                key=b"k",
                partition=index % FILLED_PARTITIONS,
                timestamp_ms=first_ms + index * 1000,
            )
            written.append(Written(sent.partition, sent.offset, sent.timestamp))
    finally:
        await producer.stop()
    return written


@asynccontextmanager
async def group_member(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A member of the stage's group that holds partitions until the block ends."""
    topic = STAGE.topic.name(settings.topics.prefix)
    consumer = group_consumer(settings, topic, group=settings.group(STAGE.name))
    await consumer.start()
    try:

        async def assigned() -> bool | None:
            await consumer.getmany(timeout_ms=100)
            return True if consumer.assignment() else None

        await eventually(assigned)
        yield consumer
    finally:
        await consumer.stop()


async def commit_to_end(settings: Settings) -> dict[int, int]:
    """The group, as a member would leave it having read everything; its end offsets."""
    async with group_member(settings) as consumer:
        partitions = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(ends)
    return {tp.partition: offset for tp, offset in ends.items()}


async def committed(settings: Settings) -> dict[int, int]:
    admin = admin_client(settings)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(settings.group(STAGE.name))
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in found.items()}


def first_at_or_after(written: list[Written], ends: dict[int, int], cut_ms: int) -> dict[int, int]:
    """Per partition, the offset of its first record stamped at or after `cut_ms`, else its end."""
    expected = dict(ends)
    for record in reversed(written):
        if record.timestamp_ms >= cut_ms:
            expected[record.partition] = record.offset
    return expected


def iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat()


async def test_reset_moves_each_partition_to_its_first_record_at_the_time(
    settings: Settings,
) -> None:
    written = await write_records(settings)
    ends = await commit_to_end(settings)
    assert await committed(settings) == ends
    cut_ms = written[RECORDS // 2].timestamp_ms
    expected = first_at_or_after(written, ends, cut_ms)
    # The cut is a record's own time: that record is read again, the one before it is not.
    assert expected[written[RECORDS // 2].partition] == written[RECORDS // 2].offset
    assert any(expected[p] < ends[p] for p in range(FILLED_PARTITIONS))

    result = await triggerline(
        settings, "groups", "reset", STAGE.name, "--to", iso(cut_ms), "--yes"
    )

    assert result.code == 0, result.stderr
    assert await committed(settings) == expected
    again = sum(ends[p] - expected[p] for p in ends)
    assert again == RECORDS - RECORDS // 2
    assert f"in all: {again} to re-process, 0 skipped" in result.stdout
    assert "is decided `duplicate` and not routed" in " ".join(result.stdout.split())

    forward = await triggerline(settings, "groups", "reset", STAGE.name, "--to", "latest", "--yes")

    assert forward.code == 0, forward.stderr
    assert await committed(settings) == ends
    assert f"in all: 0 to re-process, {again} skipped" in forward.stdout


async def test_reset_is_refused_while_the_group_has_a_member(settings: Settings) -> None:
    written = await write_records(settings)
    ends = await commit_to_end(settings)
    async with group_member(settings):
        result = await triggerline(
            settings, "groups", "reset", STAGE.name, "--to", iso(written[0].timestamp_ms), "--yes"
        )

    assert result.code == 1
    assert "active member" in result.stderr
    assert f"stop every {STAGE.name} worker first" in result.stderr
    assert await committed(settings) == ends


async def test_answering_no_changes_nothing(settings: Settings) -> None:
    written = await write_records(settings)
    ends = await commit_to_end(settings)

    result = await triggerline(
        settings, "groups", "reset", STAGE.name, "--to", iso(written[0].timestamp_ms), answer="n\n"
    )

    assert result.code == 1
    assert f"in all: {RECORDS} to re-process" in result.stdout
    assert f"commit these offsets for group {settings.group(STAGE.name)}?" in result.stdout
    assert "Aborted" in result.stderr
    assert await committed(settings) == ends


async def test_dry_run_prints_the_plan_and_changes_nothing(settings: Settings) -> None:
    written = await write_records(settings)
    ends = await commit_to_end(settings)

    result = await triggerline(
        settings, "groups", "reset", STAGE.name, "--to", iso(written[0].timestamp_ms), "--dry-run"
    )

    assert result.code == 0, result.stderr
    for partition in range(FILLED_PARTITIONS):
        # partition, committed (the end), new offset (the start), records read again
        per_partition = RECORDS // FILLED_PARTITIONS
        assert f"{partition:>9}  {ends[partition]:>10}  {0:>10}  {per_partition} to re-process" in (
            result.stdout
        )
    assert "dry run: nothing changed" in result.stdout
    assert await committed(settings) == ends


async def test_a_member_that_joins_after_the_plan_stops_the_reset(settings: Settings) -> None:
    written = await write_records(settings)
    ends = await commit_to_end(settings)
    target = datetime.fromtimestamp(written[0].timestamp_ms / 1000, UTC)
    plan = await plan_reset(settings, STAGE, target)
    assert plan.members == ()
    assert plan.moving

    async with group_member(settings):
        with pytest.raises(GroupResetError, match="active member"):
            await apply_reset(settings, plan)

    assert await committed(settings) == ends
