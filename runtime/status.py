"""The pipeline at a glance, for `triggerline status` and the console's ops page (one source, so
both always show the same thing).

- Consumer lag per stage: for each stage's consumer group, its committed offsets against the end
  offsets of the topic it reads (the admin API and a group-less consumer: nothing joins a group).
- Open circuits: the dispatchers keep their circuit breakers in memory and export them on their
  ops port (`triggerline_dispatcher_circuits`), so they are read from
  http://127.0.0.1:TRIGGERLINE_DISPATCHER_METRICS_PORT/metrics; a dispatcher elsewhere, or one
  not running, is reported as unknown, never as zero.
- The dead-letter queue's size: the dead-letters topic's end offsets minus its start offsets.
- The cron leader: the cron group's member that owns the cron-leader partition, which is how
  the cron producers elect their leader (ingest/cron/election.py).

Offsets count transaction markers too: a stage reading a transactional topic (routed-events,
delivery-log) may show a small lag while it is caught up.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

import httpx
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError
from prometheus_client.parser import text_string_to_metric_families

from runtime.kafka import admin_client, standalone_consumer
from runtime.metrics import DISPATCH_CIRCUITS
from runtime.settings import Settings
from schemas.topics import (
    CRON_LEADER,
    DEAD_LETTERS,
    DELIVERY_LOG,
    RAW_EVENTS,
    ROUTED_EVENTS,
    TopicSpec,
)

# Each stage's consumer group (`settings.group(name)`) and the topic it reads; the same stages
# `triggerline groups reset` moves.
STAGE_INPUTS: tuple[tuple[str, TopicSpec], ...] = (
    ("processors", RAW_EVENTS),
    ("dispatchers", ROUTED_EVENTS),
    ("delivery-log-sink", DELIVERY_LOG),
)
# A metrics endpoint that has not answered by then is reported unknown: the page stays fast.
METRICS_TIMEOUT_S = 0.5
CIRCUIT_STATES = ("open", "half_open", "closed")
CIRCUITS_METRIC = next(iter(DISPATCH_CIRCUITS.describe())).name


class StatusUnavailable(Exception):
    """Kafka could not say: a topic is missing, or the cluster did not answer."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    # None: the group has committed nothing on this partition (it starts from the earliest).
    committed: int | None
    end: int
    lag: int


@dataclass(frozen=True, slots=True)
class StageLag:
    stage: str
    group: str
    topic: str
    members: int
    partitions: tuple[PartitionLag, ...]

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


@dataclass(frozen=True, slots=True)
class Circuits:
    """Circuit breakers by state, or why they are unknown."""

    source: str
    by_state: dict[str, int] | None = None
    unknown: str | None = None

    @property
    def open(self) -> int | None:
        return None if self.by_state is None else self.by_state.get("open", 0)


@dataclass(frozen=True, slots=True)
class CronLeader:
    # "leader", "none" (no cron producer holds it) or "unknown".
    state: str
    client_id: str | None = None
    host: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    stages: tuple[StageLag, ...]
    dead_letters: int
    circuits: Circuits
    cron_leader: CronLeader


async def read_status(settings: Settings) -> Status:
    """StatusUnavailable, saying why, when Kafka cannot answer."""
    circuits = asyncio.create_task(dispatcher_circuits(settings))
    try:
        inputs = {stage: spec.name(settings.topics.prefix) for stage, spec in STAGE_INPUTS}
        dead_letters_topic = DEAD_LETTERS.name(settings.topics.prefix)
        starts, ends = await _offsets(settings, [*inputs.values(), dead_letters_topic])
        admin = admin_client(settings)
        await admin.start()
        try:
            stages = tuple(
                [
                    await _stage_lag(settings, admin, stage, topic, starts=starts, ends=ends)
                    for stage, topic in inputs.items()
                ]
            )
            leader = await cron_leader(settings, admin)
        finally:
            await admin.close()
    except KafkaError as exc:
        circuits.cancel()
        raise StatusUnavailable(
            f"Kafka at {settings.kafka.bootstrap_servers} did not answer ({type(exc).__name__})"
        ) from exc
    except BaseException:
        circuits.cancel()
        raise
    dead_letters = sum(
        end - starts[tp] for tp, end in ends.items() if tp.topic == dead_letters_topic
    )
    return Status(stages, dead_letters, await circuits, leader)


async def _offsets(
    settings: Settings, topics: list[str]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Start and end offsets of every partition of `topics`, read by one group-less consumer
    (read_committed: an end is the last stable offset)."""
    consumer = standalone_consumer(settings, *topics)
    try:
        # Subscribed without a group, start() waits for the topics' metadata and assigns them.
        await consumer.start()
        partitions = list(consumer.assignment())
        return (
            await consumer.beginning_offsets(partitions),
            await consumer.end_offsets(partitions),
        )
    except UnknownTopicOrPartitionError:
        raise StatusUnavailable(
            f"a topic of {', '.join(topics)} does not exist; run `triggerline topics ensure`"
        ) from None
    finally:
        await consumer.stop()


async def _stage_lag(
    settings: Settings,
    admin: AIOKafkaAdminClient,
    stage: str,
    topic: str,
    *,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
) -> StageLag:
    group = settings.group(stage)
    partitions = sorted((tp for tp in ends if tp.topic == topic), key=lambda tp: tp.partition)
    committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    lags = []
    for tp in partitions:
        meta = committed.get(tp)
        offset = None if meta is None or meta.offset is None or meta.offset < 0 else meta.offset
        # Nothing committed (or committed before what retention kept): it reads from the start.
        read_from = starts[tp] if offset is None else max(offset, starts[tp])
        lags.append(PartitionLag(tp.partition, offset, ends[tp], max(0, ends[tp] - read_from)))
    members = len(await _members(admin, group))
    return StageLag(stage, group, topic, members, tuple(lags))


async def _members(admin: AIOKafkaAdminClient, group: str) -> list[dict[str, object]]:
    for response in await admin.describe_consumer_groups([group]):
        for described in response.to_object()["groups"]:
            if described["group"] == group and not described["error_code"]:
                members: list[dict[str, object]] = described["members"]
                return members
    return []


async def cron_leader(settings: Settings, admin: AIOKafkaAdminClient) -> CronLeader:
    topic = CRON_LEADER.name(settings.topics.prefix)
    try:
        members = await _members(admin, settings.group("cron"))
    except KafkaError as exc:
        return CronLeader("unknown", detail=f"cannot describe the cron group: {exc}")
    for member in members:
        raw = member.get("member_assignment")
        if not isinstance(raw, bytes) or not raw:
            continue
        assignment = ConsumerProtocolMemberAssignment.decode(raw)
        if any(tp.topic == topic for tp in assignment.partitions()):
            return CronLeader("leader", str(member["client_id"]), str(member["client_host"]))
    detail = "no cron producer running" if not members else "election in progress"
    return CronLeader("none", detail=detail)


async def dispatcher_circuits(settings: Settings) -> Circuits:
    """The circuit breakers of the dispatcher whose ops port is on this host."""
    url = f"http://127.0.0.1:{settings.dispatcher.metrics_port}/metrics"
    try:
        async with httpx.AsyncClient(timeout=METRICS_TIMEOUT_S) as client:
            response = await client.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return Circuits(url, unknown=f"no dispatcher metrics at {url} ({type(exc).__name__})")
    return Circuits(url, by_state=circuit_counts(response.text))


def circuit_counts(metrics: str) -> dict[str, int]:
    """Circuit breakers by state, summed over target kinds, from a Prometheus text page."""
    counts = dict.fromkeys(CIRCUIT_STATES, 0)
    for family in text_string_to_metric_families(metrics):
        if family.name != CIRCUITS_METRIC:
            continue
        for sample in family.samples:
            state = sample.labels.get("state", "")
            counts[state] = counts.get(state, 0) + int(sample.value)
    return counts


def format_status(status: Status) -> str:
    """What `triggerline status` prints."""
    lines = ["consumer lag (records not yet committed):"]
    for stage in status.stages:
        lines.append(
            f"  {stage.stage:<18} lag {stage.lag:>8}  members {stage.members}  group {stage.group}"
        )
        for p in stage.partitions:
            committed = "-" if p.committed is None else str(p.committed)
            lines.append(f"    partition {p.partition}: committed {committed} end {p.end}")
    circuits = status.circuits
    if circuits.by_state is None:
        lines.append(f"open circuits: unknown ({circuits.unknown})")
    else:
        states = ", ".join(f"{name} {count}" for name, count in circuits.by_state.items())
        lines.append(f"open circuits: {circuits.open} ({states}; from {circuits.source})")
    lines.append(f"dead letters: {status.dead_letters}")
    leader = status.cron_leader
    if leader.state == "leader":
        lines.append(f"cron leader: {leader.client_id} on {leader.host}")
    else:
        lines.append(f"cron leader: {leader.state} ({leader.detail})")
    return "\n".join(lines)


def status_json(status: Status) -> dict[str, object]:
    """What `triggerline status --json` prints: the same fields, stage lag totals included."""
    body = dataclasses.asdict(status)
    for stage, shown in zip(status.stages, body["stages"], strict=True):
        shown["lag"] = stage.lag
    body["circuits"]["open"] = status.circuits.open
    return body
