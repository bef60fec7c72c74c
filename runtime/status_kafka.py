"""What `triggerline status` reads from Kafka: the catalogue topics and their drift, each consumer
group's members and lag per partition, the cron leader and the dead letters' count.

Only topics the cluster lists are read: a missing topic is drift to report, and asking the
clients for it would only have them retry and warn. Offsets are read by a group-less consumer
assigned the partitions by hand (read_committed: an end is the last stable offset), and group
offsets and members through the admin API, so nothing joins a group.

Offsets count transaction markers too: a group reading a transactional topic (routed-events,
delivery-log) may show a small lag while it is caught up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

from runtime.kafka import admin_client, standalone_consumer
from runtime.settings import Settings
from runtime.status_database import ActiveReplay
from runtime.topic_catalogue import TopicCatalogueError, deployed_catalogue, describe, drift
from schemas.topics import (
    CRON_LEADER,
    DEAD_LETTERS,
    DELIVERY_LOG,
    RAW_EVENTS,
    ROUTED_EVENTS,
    TopicSpec,
)

# Each consumer group (`settings.group(name)`) and the topic it reads; the first three are the
# stages `triggerline groups reset` moves. The cron producers' group reads no records: its one
# member that owns the cron-leader partition is the leader (ingest/cron/election.py).
GROUP_INPUTS: tuple[tuple[str, TopicSpec], ...] = (
    ("processors", RAW_EVENTS),
    ("dispatchers", ROUTED_EVENTS),
    ("delivery-log-sink", DELIVERY_LOG),
    ("cron", CRON_LEADER),
)
# A broker that has not answered everything by then is reported as not answering.
KAFKA_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_MS = 5000


@dataclass(frozen=True, slots=True)
class TopicState:
    suffix: str
    name: str
    # None: the cluster does not have the topic.
    partitions: int | None
    # How it differs from the catalogue, one phrase each; ("missing",) when it is missing.
    drift: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    # None: the group has committed nothing on this partition (it starts from the earliest).
    committed: int | None
    end: int
    lag: int
    # The client id of the member that owns the partition, if any does.
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class GroupLag:
    name: str
    group: str
    topic: str
    # Client ids of the group's members.
    members: tuple[str, ...]
    partitions: tuple[PartitionLag, ...]
    # Why there are no partitions (a missing topic), or a replay's progress.
    note: str | None = None

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


@dataclass(frozen=True, slots=True)
class CronLeader:
    # "leader", "none" (no cron producer holds it) or "unknown".
    state: str
    client_id: str | None = None
    host: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class KafkaFacts:
    address: str
    reachable: bool
    # Why Kafka could not be read, when it could not.
    problem: str | None = None
    brokers: int = 0
    topics: tuple[TopicState, ...] = ()
    groups: tuple[GroupLag, ...] = ()
    cron_leader: CronLeader | None = None
    # Records on the dead-letters topic; None when it is missing.
    dead_letters: int | None = None


@dataclass(frozen=True, slots=True)
class _Member:
    client_id: str
    host: str
    partitions: tuple[TopicPartition, ...] = field(default=())


async def read_kafka(settings: Settings, replays: Sequence[ActiveReplay] = ()) -> KafkaFacts:
    """Never raises for a broker that does not answer: the facts say so."""
    address = settings.kafka.bootstrap_servers
    try:
        async with asyncio.timeout(KAFKA_TIMEOUT_S):
            return await _read(settings, replays)
    except TimeoutError:
        return KafkaFacts(address, False, f"no answer within {KAFKA_TIMEOUT_S:.0f} s")
    except (KafkaError, OSError) as exc:
        return KafkaFacts(address, False, f"no answer ({type(exc).__name__})")
    except TopicCatalogueError as exc:
        return KafkaFacts(address, True, str(exc))


async def _read(settings: Settings, replays: Sequence[ActiveReplay]) -> KafkaFacts:
    prefix = settings.topics.prefix
    catalogue = deployed_catalogue(settings)
    admin = admin_client(settings, request_timeout_ms=REQUEST_TIMEOUT_MS)
    # Raises KafkaConnectionError at once when no bootstrap server answers.
    await admin.start()
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
        listed = set(await admin.list_topics())
        shapes = await describe(
            admin,
            [spec.name(prefix) for spec in catalogue if spec.name(prefix) in listed],
            sorted({key for spec in catalogue for key in spec.configs()}),
        )
        factor = settings.topics.replication_factor
        topics = tuple(
            TopicState(
                spec.suffix,
                spec.name(prefix),
                shapes[spec.name(prefix)].partitions if spec.name(prefix) in shapes else None,
                drift(spec, shapes.get(spec.name(prefix)), factor),
            )
            for spec in catalogue
        )
        reads = [(name, settings.group(name), spec.name(prefix)) for name, spec in GROUP_INPUTS]
        reads += [
            (
                f"replay {replay.replay_id}",
                settings.replay_group(replay.replay_id),
                RAW_EVENTS.name(prefix),
            )
            for replay in replays
        ]
        dead_letters = DEAD_LETTERS.name(prefix)
        read_topics = {topic for _, _, topic in reads} | {dead_letters}
        starts, ends = await _offsets(
            settings,
            [
                TopicPartition(name, partition)
                for name in sorted(read_topics & shapes.keys())
                for partition in range(shapes[name].partitions)
            ],
        )
        members = await _members(admin, [group for _, group, _ in reads])
        notes = {
            f"replay {r.replay_id}": f"{r.state}, scanned {r.scanned} of {r.to_scan}"
            for r in replays
        }
        groups = tuple(
            [
                await _group_lag(
                    admin,
                    name,
                    group,
                    topic,
                    members=members.get(group, []),
                    starts=starts,
                    ends=ends,
                    note=notes.get(name) if topic in shapes else "topic missing",
                )
                for name, group, topic in reads
            ]
        )
        leader = cron_leader(members.get(settings.group("cron"), []), CRON_LEADER.name(prefix))
    finally:
        await admin.close()
    return KafkaFacts(
        settings.kafka.bootstrap_servers,
        True,
        brokers=brokers,
        topics=topics,
        groups=groups,
        cron_leader=leader,
        dead_letters=(
            sum(end - starts[tp] for tp, end in ends.items() if tp.topic == dead_letters)
            if dead_letters in shapes
            else None
        ),
    )


async def _offsets(
    settings: Settings, partitions: list[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Start and end offsets of the partitions (of topics that exist)."""
    if not partitions:
        return {}, {}
    consumer = standalone_consumer(settings, request_timeout_ms=REQUEST_TIMEOUT_MS)
    try:
        await consumer.start()
        consumer.assign(partitions)
        return (
            await consumer.beginning_offsets(partitions),
            await consumer.end_offsets(partitions),
        )
    finally:
        await consumer.stop()


async def _group_lag(
    admin: AIOKafkaAdminClient,
    name: str,
    group: str,
    topic: str,
    *,
    members: list[_Member],
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    note: str | None,
) -> GroupLag:
    clients = tuple(sorted(member.client_id for member in members))
    partitions = sorted((tp for tp in ends if tp.topic == topic), key=lambda tp: tp.partition)
    if not partitions:
        return GroupLag(name, group, topic, clients, (), note)
    owners = {tp: member.client_id for member in members for tp in member.partitions}
    committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    lags = []
    for tp in partitions:
        meta = committed.get(tp)
        offset = None if meta is None or meta.offset is None or meta.offset < 0 else meta.offset
        # Nothing committed (or committed before what retention kept): it reads from the start.
        read_from = starts[tp] if offset is None else max(offset, starts[tp])
        lag = max(0, ends[tp] - read_from)
        lags.append(PartitionLag(tp.partition, offset, ends[tp], lag, owners.get(tp)))
    return GroupLag(name, group, topic, clients, tuple(lags), note)


async def _members(admin: AIOKafkaAdminClient, groups: list[str]) -> dict[str, list[_Member]]:
    """Each group's members with the partitions assigned to them."""
    # One group per request: aiokafka misreads a DescribeGroups answer about several groups.
    described = await asyncio.gather(*(_group_members(admin, group) for group in groups))
    return dict(zip(groups, described, strict=True))


async def _group_members(admin: AIOKafkaAdminClient, group: str) -> list[_Member]:
    for response in await admin.describe_consumer_groups([group]):
        for described in response.to_object()["groups"]:
            if described["group"] == group and not described["error_code"]:
                return [_member(member) for member in described["members"]]
    return []


def _member(described: dict[str, Any]) -> _Member:
    raw = described.get("member_assignment")
    partitions: tuple[TopicPartition, ...] = ()
    if isinstance(raw, bytes) and raw:
        try:
            partitions = tuple(ConsumerProtocolMemberAssignment.decode(raw).partitions())
        except ValueError:
            # Not the consumer protocol's assignment: shown as a member owning no partition.
            partitions = ()
    return _Member(str(described["client_id"]), str(described["client_host"]), partitions)


def cron_leader(members: list[_Member], topic: str) -> CronLeader:
    for member in members:
        if any(tp.topic == topic for tp in member.partitions):
            return CronLeader("leader", member.client_id, member.host)
    detail = "no cron producer running" if not members else "election in progress"
    return CronLeader("none", detail=detail)
