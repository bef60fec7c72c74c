"""`ensure_topics` against the real broker: creation, idempotence, drift and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from deploy.topics import TopicReport, ensure_topics
from runtime.kafka import admin_client
from runtime.settings import Settings
from runtime.topic_catalogue import TopicCatalogueError, deployed_catalogue
from schemas.topics import CATALOGUE, RAW_EVENTS
from tests.integration.support.isolation import fresh_prefix
from tests.integration.support.polling import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(base_settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = admin_client(base_settings)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def unprovisioned(
    base_settings: Settings, admin: AIOKafkaAdminClient
) -> AsyncIterator[Settings]:
    """Settings with a prefix that has no topics yet; topics whose names start with the prefix
    are deleted afterwards."""
    settings = base_settings.override(topics__prefix=fresh_prefix())
    yield settings
    ours = [t for t in await admin.list_topics() if t.startswith(settings.topics.prefix)]
    if ours:
        await admin.delete_topics(ours)


# Just after a creation the broker may briefly answer "unknown topic"; these wait that out.
async def partition_count(admin: AIOKafkaAdminClient, topic: str) -> int:
    async def described() -> int | None:
        [found] = await admin.describe_topics([topic])
        return len(found["partitions"]) if found["error_code"] == 0 else None

    return await eventually(described, timeout_s=10)


async def topic_configs(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    async def described() -> dict[str, str] | None:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, None)]
        )
        [resource] = response.to_object()["resources"]
        if resource["error_code"] != 0:
            return None
        return {e["config_names"]: e["config_value"] for e in resource["config_entries"]}

    return await eventually(described, timeout_s=10)


def by_name(reports: list[TopicReport]) -> dict[str, TopicReport]:
    return {report.name: report for report in reports}


async def test_creates_the_catalogue_as_declared(
    unprovisioned: Settings, admin: AIOKafkaAdminClient
) -> None:
    reports = await ensure_topics(unprovisioned)

    prefix = unprovisioned.topics.prefix
    assert reports == [TopicReport(spec.name(prefix), True, ()) for spec in CATALOGUE]
    for spec in deployed_catalogue(unprovisioned):
        name = spec.name(prefix)
        assert await partition_count(admin, name) == spec.partitions, name
        configs = await topic_configs(admin, name)
        assert configs["cleanup.policy"] == spec.cleanup_policy, name
        assert configs["retention.ms"] == spec.configs()["retention.ms"], name
        assert configs["min.insync.replicas"] == spec.configs()["min.insync.replicas"], name
        if spec.segment_ms is not None:
            assert configs["segment.ms"] == str(spec.segment_ms), name


async def test_a_second_run_creates_nothing_and_finds_no_drift(unprovisioned: Settings) -> None:
    # Right after a creation the broker may still answer "unknown topic", which once read as
    # drift. It does so only some of the time, hence several fresh prefixes.
    for attempt in range(5):
        settings = unprovisioned.override(topics__prefix=f"{unprovisioned.topics.prefix}-{attempt}")
        await ensure_topics(settings)

        again = await ensure_topics(settings)

        assert [(r.created, r.drift) for r in again] == [(False, ())] * len(CATALOGUE)


async def test_a_hand_made_topic_that_differs_is_reported_not_changed(
    unprovisioned: Settings, admin: AIOKafkaAdminClient
) -> None:
    raw = RAW_EVENTS.name(unprovisioned.topics.prefix)
    # Wrong partition count and cleanup policy; the rest is left at the broker defaults.
    await admin.create_topics([NewTopic(raw, 2, 1, topic_configs={"cleanup.policy": "compact"})])
    defaults = await topic_configs(admin, raw)

    reports = by_name(await ensure_topics(unprovisioned))

    assert reports[raw].created is False
    assert reports[raw].drift == (
        f"partitions: catalogue {RAW_EVENTS.partitions}, cluster 2",
        "cleanup.policy: catalogue delete, cluster compact",
        f"retention.ms: catalogue {RAW_EVENTS.retention_ms}, cluster {defaults['retention.ms']}",
        f"max.message.bytes: catalogue {RAW_EVENTS.max_message_bytes}, "
        f"cluster {defaults['max.message.bytes']}",
    )
    # The rest of the catalogue is still created, and the odd topic is left as it was.
    assert [r.created for n, r in reports.items() if n != raw] == [True] * (len(CATALOGUE) - 1)
    assert await partition_count(admin, raw) == 2
    assert (await topic_configs(admin, raw))["cleanup.policy"] == "compact"


async def test_a_refused_creation_raises_instead_of_reporting_success(
    unprovisioned: Settings, admin: AIOKafkaAdminClient
) -> None:
    # The local cluster has one broker, so it refuses a replication factor of 3.
    impossible = unprovisioned.override(topics__replication_factor=3)

    with pytest.raises(TopicCatalogueError, match=RAW_EVENTS.name(unprovisioned.topics.prefix)):
        await ensure_topics(impossible)

    prefix = f"{unprovisioned.topics.prefix}."
    assert [t for t in await admin.list_topics() if t.startswith(prefix)] == []
