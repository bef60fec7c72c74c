"""Moving a stage's consumer group to a point in time: `triggerline groups reset`.

The stage re-reads its input from there (or skips ahead to it) when its workers start again.
Kafka lets a group's offsets be changed safely only while the group has no members, so the
reset is refused while any worker of the stage is running; the commit itself comes from outside
the group (no generation), which the broker also refuses for a group that has members.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from runtime.kafka import admin_client, group_consumer, whole_topic_consumer
from runtime.settings import Settings
from schemas.topics import DELIVERY_LOG, RAW_EVENTS, ROUTED_EVENTS, TopicSpec

# A group that no worker is in; any other state (Stable, PreparingRebalance,
# CompletingRebalance) means workers are running or joining.
IDLE_GROUP_STATES = frozenset({"Empty", "Dead"})
NOTE_WIDTH = 88
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class GroupResetError(Exception):
    """A reset that cannot be planned or made; the message is written for the operator."""


@dataclass(frozen=True, slots=True)
class ConsumerStage:
    """A stage that reads its input topic in a consumer group named `settings.group(name)`."""

    name: str
    topic: TopicSpec
    # What moving this stage's offsets means, shown under every plan.
    consequences: tuple[str, ...]


CONSUMER_STAGES: tuple[ConsumerStage, ...] = (
    ConsumerStage(
        name="processors",
        topic=RAW_EVENTS,
        consequences=(
            "Deduplication applies: an event read again within the newest one to two "
            "deduplication windows (TRIGGERLINE_PROCESSOR_DEDUPE_WINDOW_S) is decided "
            "`duplicate` and not routed; older events are routed and delivered again. "
            "`triggerline replay` re-drives recent events past deduplication.",
        ),
    ),
    ConsumerStage(
        name="dispatchers",
        topic=ROUTED_EVENTS,
        consequences=(
            "The commit metadata of moved partitions (retry state and the ranges finished above "
            "the old offset) is dropped: every record from the new offset is delivered again, "
            "under the same webhook-id as before, and a record waiting to retry starts over "
            "at attempt 1.",
        ),
    ),
    ConsumerStage(
        name="delivery-log-sink",
        topic=DELIVERY_LOG,
        consequences=(
            "Rows are keyed by delivery-log partition and offset: re-read records insert only "
            "rows that are missing (pruned ones come back until the next prune); skipped "
            "records never reach the delivery_log table.",
        ),
    ),
)

STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in CONSUMER_STAGES)

# Where to move a group: the first record stamped at or after a time, or either end.
ResetTarget = datetime | Literal["earliest", "latest"]


def consumer_stage(name: str) -> ConsumerStage:
    for stage in CONSUMER_STAGES:
        if stage.name == name:
            return stage
    raise GroupResetError(
        f"unknown stage {name!r}; stages with a consumer group: {', '.join(STAGE_NAMES)}"
    )


def parse_target(text: str) -> ResetTarget:
    """`earliest`, `latest` or an ISO 8601 time with a zone (e.g. 2026-12-04T09:00:00Z)."""
    if text == "earliest":
        return "earliest"
    if text == "latest":
        return "latest"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise GroupResetError(
            f"--to {text!r} is neither an ISO 8601 time nor `earliest`/`latest`"
        ) from None
    if moment.tzinfo is None:
        raise GroupResetError(
            f"--to {text!r} has no time zone; give one, e.g. 2026-12-04T09:00:00Z for UTC "
            "or 2026-12-04T10:00:00+01:00"
        )
    return moment


@dataclass(frozen=True, slots=True)
class PartitionMove:
    partition: int
    # None when the group has committed nothing for the partition.
    committed: int | None
    target: int
    # Where the group resumes without a commit, or with one the retention has deleted.
    log_start: int

    @property
    def resumes_at(self) -> int:
        if self.committed is None:
            return self.log_start
        return max(self.committed, self.log_start)

    @property
    def records(self) -> int:
        """Records read again (positive) or skipped (negative) by the move."""
        return self.resumes_at - self.target

    @property
    def moves(self) -> bool:
        return self.committed != self.target


@dataclass(frozen=True, slots=True)
class ResetPlan:
    stage: ConsumerStage
    group: str
    topic: str
    target: ResetTarget
    partitions: tuple[PartitionMove, ...]
    # Member ids of the group when the plan was made; a reset needs none.
    members: tuple[str, ...]

    @property
    def moving(self) -> tuple[PartitionMove, ...]:
        return tuple(move for move in self.partitions if move.moves)


def describe_target(target: ResetTarget) -> str:
    if isinstance(target, datetime):
        return f"the first record at or after {target.isoformat()}"
    return f"the {target} offset"


def format_plan(plan: ResetPlan) -> str:
    lines = [
        f"group {plan.group} on {plan.topic}, to {describe_target(plan.target)}:",
        "",
        f"{'partition':>9}  {'committed':>10}  {'new offset':>10}  records",
    ]
    for move in plan.partitions:
        committed = "none" if move.committed is None else str(move.committed)
        lines.append(
            f"{move.partition:>9}  {committed:>10}  {move.target:>10}  {_records(move.records)}"
        )
    again = sum(move.records for move in plan.partitions if move.records > 0)
    skipped = -sum(move.records for move in plan.partitions if move.records < 0)
    lines += ["", f"in all: {again} to re-process, {skipped} skipped", ""]
    lines += [
        textwrap.fill(note, NOTE_WIDTH, initial_indent="note: ", subsequent_indent="      ")
        for note in plan.stage.consequences
    ]
    return "\n".join(lines)


def _records(count: int) -> str:
    if count > 0:
        return f"{count} to re-process"
    if count < 0:
        return f"{-count} skipped"
    return "unchanged"


def refusal(plan: ResetPlan) -> str:
    return (
        f"group {plan.group} has {len(plan.members)} active member(s); Kafka changes a "
        f"group's offsets safely only while it is empty: stop every {plan.stage.name} worker "
        "first, then run the reset again"
    )


async def plan_reset(settings: Settings, stage: ConsumerStage, target: ResetTarget) -> ResetPlan:
    """Per partition of the stage's input topic, the committed offset and the target one."""
    group = settings.group(stage.name)
    topic = stage.topic.name(settings.topics.prefix)
    try:
        consumer = await whole_topic_consumer(settings, topic)
    except LookupError as exc:
        raise GroupResetError(str(exc)) from None
    try:
        partitions = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        targets = await _target_offsets(consumer, partitions, target, starts, ends)
    finally:
        await consumer.stop()
    admin = admin_client(settings)
    await admin.start()
    try:
        members = await _members(admin, group)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    moves = tuple(
        PartitionMove(tp.partition, _offset(committed.get(tp)), targets[tp], starts[tp])
        for tp in partitions
    )
    return ResetPlan(stage, group, topic, target, moves, members)


async def apply_reset(settings: Settings, plan: ResetPlan) -> None:
    """Commit the plan's moved partitions for its group, if the group is still empty."""
    admin = admin_client(settings)
    await admin.start()
    try:
        members = await _members(admin, plan.group)
    finally:
        await admin.close()
    if members:
        raise GroupResetError(refusal(replace(plan, members=members)))
    offsets = {TopicPartition(plan.topic, move.partition): move.target for move in plan.moving}
    if not offsets:
        return
    # Assigned, never subscribed: the consumer commits for the group without joining it.
    consumer = group_consumer(settings, group=plan.group)
    consumer.assign(list(offsets))
    await consumer.start()
    try:
        await consumer.commit(offsets)
    except KafkaError as exc:
        # The broker takes a commit from outside the group only while the group is empty.
        raise GroupResetError(
            f"the broker refused the new offsets of group {plan.group} ({exc}); "
            f"a {plan.stage.name} worker may have started: stop them all and run it again"
        ) from None
    finally:
        await consumer.stop()


async def _target_offsets(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    target: ResetTarget,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    if target == "earliest":
        return dict(starts)
    if target == "latest":
        return dict(ends)
    # Whole milliseconds in integers: float seconds can land a millisecond short.
    millis = (target - EPOCH) // timedelta(milliseconds=1)
    found = await consumer.offsets_for_times(dict.fromkeys(partitions, millis))
    # No record at or after the time: the group goes to the end and reads only new records.
    return {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in partitions}


async def _members(admin: AIOKafkaAdminClient, group: str) -> tuple[str, ...]:
    responses = await admin.describe_consumer_groups([group])
    for response in responses:
        for described in response.to_object()["groups"]:
            if described["group"] != group:
                continue
            if described["error_code"]:
                raise GroupResetError(
                    f"cannot describe group {group} (Kafka error {described['error_code']})"
                )
            ids = tuple(member["member_id"] for member in described["members"])
            if described["state"] not in IDLE_GROUP_STATES and not ids:
                # Joining workers may not be listed yet; the state says they exist.
                return (f"({described['state']})",)
            return ids
    return ()


def _offset(meta: OffsetAndMetadata | None) -> int | None:
    if meta is None or meta.offset is None or meta.offset < 0:
        return None
    return int(meta.offset)
