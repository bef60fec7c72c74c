"""The catalogue as a deployment has it, and how the cluster's topics differ from it.

`triggerline topics ensure` (deploy/topics.py) creates what is missing and reports drift;
`triggerline status` and the console's ops page (runtime/status.py) only report it. Both describe
topics and compare them here, so they always agree on what counts as drift.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import LeaderNotAvailableError, UnknownTopicOrPartitionError, for_code

from runtime.settings import Settings
from schemas.topics import CATALOGUE, PROCESSOR_DEDUPE, TopicSpec, dedupe_changelog

# For a moment after a topic is created, the broker may answer "unknown topic" although it already
# lists the topic. Read as "no partitions, no configs", that would be reported as drift.
_NOT_YET_DESCRIBABLE = frozenset(
    {UnknownTopicOrPartitionError.errno, LeaderNotAvailableError.errno}
)
DESCRIBE_TIMEOUT_S = 10.0
MISSING = "missing"


class TopicCatalogueError(RuntimeError):
    """The broker refused to create or describe a catalogue topic; the message says which."""


@dataclass(frozen=True, slots=True)
class TopicShape:
    """What the cluster holds of one topic."""

    partitions: int
    # Replicas per partition, as few as any partition has.
    replication: int
    configs: dict[str, str]


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


def drift(spec: TopicSpec, shape: TopicShape | None, replication_factor: int) -> tuple[str, ...]:
    """How the cluster's topic differs from its spec, one phrase per difference; `missing`
    alone when the cluster does not have it."""
    if shape is None:
        return (MISSING,)
    problems: list[str] = []
    if shape.partitions != spec.partitions:
        problems.append(f"partitions: catalogue {spec.partitions}, cluster {shape.partitions}")
    if shape.replication != replication_factor:
        problems.append(f"replication: catalogue {replication_factor}, cluster {shape.replication}")
    for key, wanted in spec.configs().items():
        if shape.configs.get(key) != wanted:
            problems.append(f"{key}: catalogue {wanted}, cluster {shape.configs.get(key)}")
    return tuple(problems)


async def describe(
    admin: AIOKafkaAdminClient, names: Sequence[str], config_names: Sequence[str]
) -> dict[str, TopicShape]:
    """The shape of each of the named topics (which must exist), in two requests, once the
    broker can describe them all."""
    if not names:
        return {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DESCRIBE_TIMEOUT_S
    while True:
        topics = await admin.describe_topics(list(names))
        responses = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(config_names))
                for name in names
            ]
        )
        resources = {
            resource[3]: resource for response in responses for resource in response.resources
        }
        failed = [
            (topic["topic"], code)
            for topic in topics
            for code in (topic["error_code"], resources[topic["topic"]][0])
            if code != 0
        ]
        if not failed:
            return {topic["topic"]: _shape(topic, resources[topic["topic"]]) for topic in topics}
        name, code = failed[0]
        if code not in _NOT_YET_DESCRIBABLE or loop.time() > deadline:
            raise TopicCatalogueError(f"cannot describe topic {name}: {for_code(code).__name__}")
        await asyncio.sleep(0.1)


def _shape(topic: Any, resource: Any) -> TopicShape:
    """From a DescribeTopics entry and a DescribeConfigs resource (error code, message, type,
    name, entries)."""
    partitions = topic["partitions"]
    entries = resource[4]
    return TopicShape(
        partitions=len(partitions),
        replication=min((len(p["replicas"]) for p in partitions), default=0),
        configs={entry[0]: entry[1] for entry in entries},
    )
