"""Creates the catalogue's missing topics and reports drift in existing ones.

Drift is reported, never repaired automatically: adding partitions moves keys to other
partitions and would break per-conversation order, so an operator decides.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    LeaderNotAvailableError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from runtime.kafka import admin_client, reached, whole_topic_consumer
from runtime.settings import Settings
from schemas.topics import CATALOGUE, PROCESSOR_DEDUPE, TopicSpec, dedupe_changelog

# For a moment after a topic is created, the broker may answer "unknown topic" although it already
# lists the topic. Read as "no partitions, no configs", that would be reported as drift.
_NOT_YET_DESCRIBABLE = frozenset(
    {UnknownTopicOrPartitionError.errno, LeaderNotAvailableError.errno}
)
DESCRIBE_TIMEOUT_S = 10.0


class TopicCatalogueError(RuntimeError):
    """The broker refused to create or describe a catalogue topic; the message says which."""


@dataclass(frozen=True, slots=True)
class TopicReport:
    name: str
    created: bool
    drift: tuple[str, ...]


def deployed_catalogue(settings: Settings) -> tuple[TopicSpec, ...]:
    """The catalogue as these settings deploy it: the deduplication changelog's retention
    follows the processors' window, and every topic's `min.insync.replicas` the replication."""
    changelog = dedupe_changelog(settings.processor.dedupe_window_s)
    in_sync = min_insync_replicas(settings)
    return tuple(
        replace(changelog if spec == PROCESSOR_DEDUPE else spec, min_insync_replicas=in_sync)
        for spec in CATALOGUE
    )


def min_insync_replicas(settings: Settings) -> int:
    """2 where the replication factor allows it, so that an acknowledged record is on two
    brokers; a setting above the replication factor would refuse every produce."""
    factor = settings.topics.replication_factor
    wanted = settings.topics.min_insync_replicas
    if wanted is None:
        return min(2, factor)
    if wanted > factor:
        raise TopicCatalogueError(
            f"TRIGGERLINE_TOPIC_MIN_INSYNC_REPLICAS={wanted} exceeds "
            f"TRIGGERLINE_TOPIC_REPLICATION_FACTOR={factor}: every produce would be refused"
        )
    return wanted


async def ensure_topics(
    settings: Settings, catalogue: tuple[TopicSpec, ...] | None = None
) -> list[TopicReport]:
    catalogue = deployed_catalogue(settings) if catalogue is None else catalogue
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in catalogue if spec.name(settings.topics.prefix) not in existing]
        created: set[str] = set()
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        spec.name(settings.topics.prefix),
                        num_partitions=spec.partitions,
                        replication_factor=settings.topics.replication_factor,
                        topic_configs=spec.configs(),
                    )
                    for spec in missing
                ]
            )
            created = _created(response.topic_errors)
            await _await_leaders(admin, sorted(created))
        reports = []
        for spec in catalogue:
            name = spec.name(settings.topics.prefix)
            drift = () if name in created else await _drift(admin, spec, name)
            reports.append(TopicReport(name, name in created, drift))
        return reports
    finally:
        await admin.close()


def _created(topic_errors: list[tuple[Any, ...]]) -> set[str]:
    """The topics a CreateTopics response says were created; raises if any was refused.

    The broker answers per topic and the admin client does not raise, so a refusal (say, a
    replication factor above the broker count) would otherwise pass for a created topic.
    """
    created: set[str] = set()
    refused: list[str] = []
    # (name, code) in CreateTopics v0, (name, code, message) from v1 on.
    for name, code, *message in topic_errors:
        if code == 0:
            created.add(name)
        elif code != TopicAlreadyExistsError.errno:
            # "Already exists" means a concurrent ensure won the race; its drift is checked.
            refused.append(f"{name}: {(message and message[0]) or f'error code {code}'}")
    if refused:
        raise TopicCatalogueError("cannot create topics: " + "; ".join(refused))
    return created


async def _await_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Return once every partition of the new topics has a leader.

    A created topic's partitions get their leaders a moment later (longer on a busy broker);
    a stage started before then finds no one to fetch from or produce to.
    """
    if not names:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DESCRIBE_TIMEOUT_S
    while True:
        topics = await admin.describe_topics(names)
        leaderless = sorted(
            topic["topic"]
            for topic in topics
            if topic["error_code"] != 0
            or any(p["error_code"] != 0 or p["leader"] < 0 for p in topic["partitions"])
        )
        if not leaderless:
            return
        if loop.time() > deadline:
            raise TopicCatalogueError(f"partitions without a leader: {', '.join(leaderless)}")
        await asyncio.sleep(0.1)


async def _drift(admin: AIOKafkaAdminClient, spec: TopicSpec, name: str) -> tuple[str, ...]:
    problems: list[str] = []
    partitions, actual = await _describe(admin, name, tuple(spec.configs()))
    if partitions != spec.partitions:
        problems.append(f"partitions: catalogue {spec.partitions}, cluster {partitions}")
    for key, wanted in spec.configs().items():
        if actual.get(key) != wanted:
            problems.append(f"{key}: catalogue {wanted}, cluster {actual.get(key)}")
    return tuple(problems)


async def _describe(
    admin: AIOKafkaAdminClient, name: str, config_names: tuple[str, ...]
) -> tuple[int, dict[str, str]]:
    """The topic's partition count and the named configs, once the broker can describe it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DESCRIBE_TIMEOUT_S
    while True:
        [topic] = await admin.describe_topics([name])
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(config_names))]
        )
        [resource] = [resource for response in responses for resource in response.resources]
        codes = (topic["error_code"], resource[0])
        if codes == (0, 0):
            return len(topic["partitions"]), {entry[0]: entry[1] for entry in resource[4]}
        failed = next(code for code in codes if code != 0)
        if failed not in _NOT_YET_DESCRIBABLE or loop.time() > deadline:
            raise TopicCatalogueError(f"cannot describe topic {name}: {for_code(failed).__name__}")
        await asyncio.sleep(0.1)


async def read_topic(settings: Settings, spec: TopicSpec, limit: int) -> list[str]:
    """Up to `limit` records of a catalogue topic as JSON lines with their position."""
    consumer = await whole_topic_consumer(settings, spec.name(settings.topics.prefix))
    lines: list[str] = []
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while len(lines) < limit and not await reached(consumer, ends):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    value = orjson.loads(record.value) if record.value is not None else None
                    position = {"partition": tp.partition, "offset": record.offset}
                    lines.append(orjson.dumps({**position, "value": value}).decode())
    finally:
        await consumer.stop()
    return lines[:limit]
