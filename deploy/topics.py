"""Creates the catalogue's missing topics and reports drift in existing ones.

Drift is reported, never repaired automatically: adding partitions moves keys to other
partitions and would break per-conversation order, so an operator decides.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from runtime.kafka import admin_client, reached, whole_topic_consumer
from runtime.settings import Settings
from runtime.topic_catalogue import (
    DESCRIBE_TIMEOUT_S,
    TopicCatalogueError,
    deployed_catalogue,
    describe,
    drift,
)
from schemas.topics import TopicSpec


@dataclass(frozen=True, slots=True)
class TopicReport:
    name: str
    created: bool
    drift: tuple[str, ...]


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
        names = {spec: spec.name(settings.topics.prefix) for spec in catalogue}
        shapes = await describe(
            admin,
            [name for name in names.values() if name not in created],
            sorted({key for spec in catalogue for key in spec.configs()}),
        )
        factor = settings.topics.replication_factor
        return [
            TopicReport(
                name,
                name in created,
                () if name in created else drift(spec, shapes[name], factor),
            )
            for spec, name in names.items()
        ]
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
