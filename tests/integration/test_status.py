"""`triggerline status` against the real broker and PostgreSQL: a missing topic and a partition
count that differ from the catalogue, a group's lag per partition and its member, the relay
backlog, and a broker that does not answer, all without library log noise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from deploy.topics import ensure_topics
from runtime.kafka import durable_producer, group_consumer
from runtime.settings import Settings
from runtime.status import read_status
from runtime.topic_catalogue import deployed_catalogue
from schemas.topics import CRON_PROGRESS, DEAD_LETTERS, RAW_EVENTS, ROUTED_EVENTS
from tests.integration.support.cli import triggerline
from tests.integration.support.isolation import drop_topics, fresh_prefix
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port, with_free_ports

pytestmark = pytest.mark.integration


@pytest.fixture
async def drifted(base_settings: Settings, database_url: str) -> AsyncIterator[Settings]:
    """Settings whose topics are the catalogue's, except that cron-progress is missing and
    dead-letters has one partition instead of three."""
    settings = with_free_ports(
        base_settings.override(topics__prefix=fresh_prefix(), database__url=SecretStr(database_url))
    )
    catalogue = tuple(
        replace(spec, partitions=1) if spec.suffix == DEAD_LETTERS.suffix else spec
        for spec in deployed_catalogue(settings)
        if spec.suffix != CRON_PROGRESS.suffix
    )
    await ensure_topics(settings, catalogue)
    yield settings
    await drop_topics(settings)


async def raw_records_waiting(settings: Settings) -> None:
    """Three raw records on partition 1, of which the processors' group committed the first,
    and one on partition 4, which it never read."""
    raw = RAW_EVENTS.name(settings.topics.prefix)
    producer = durable_producer(settings)
    await producer.start()
    try:
        for partition in (1, 1, 1, 4):
            await producer.send_and_wait(raw, b"{}", partition=partition)
    finally:
        await producer.stop()
    committer = group_consumer(settings, group=settings.group("processors"))
    await committer.start()
    try:
        committer.assign([TopicPartition(raw, 1)])
        await committer.commit({TopicPartition(raw, 1): 1})
    finally:
        await committer.stop()


def outbox_rows_waiting(settings: Settings) -> None:
    """Two changes the relay has not published (no ingest runs), the older five minutes old,
    and one set aside."""
    with psycopg.connect(settings.database.url.get_secret_value(), autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO trigger_config_outbox (trigger_id, payload, created_at, failed_at, error)
            VALUES (gen_random_uuid(), NULL, now() - interval '5 minutes', NULL, NULL),
                   (gen_random_uuid(), NULL, now(), NULL, NULL),
                   (gen_random_uuid(), NULL, now(), now(), 'RecordTooLargeError: too large')
            """
        )


async def dispatcher_member(settings: Settings) -> AIOKafkaConsumer:
    """A member of the dispatchers' group, once it owns routed-events' partitions."""
    member = group_consumer(
        settings, ROUTED_EVENTS.name(settings.topics.prefix), group=settings.group("dispatchers")
    )
    await member.start()

    async def assigned() -> bool | None:
        await member.getmany(timeout_ms=100)
        return True if member.assignment() else None

    await eventually(assigned, timeout_s=30)
    return member


async def test_status_shows_drift_lag_per_partition_members_and_the_relay_backlog(
    drifted: Settings,
) -> None:
    await raw_records_waiting(drifted)
    outbox_rows_waiting(drifted)
    member = await dispatcher_member(drifted)
    try:
        status = await read_status(drifted)

        printed = await triggerline(drifted, "status")
        as_json = await triggerline(drifted, "status", "--json")
    finally:
        await member.stop()

    assert (status.kafka.reachable, status.database.reachable) == (True, True)
    topics = {topic.suffix: topic for topic in status.kafka.topics}
    assert (topics["cron-progress"].partitions, topics["cron-progress"].drift) == (
        None,
        ("missing",),
    )
    assert topics["dead-letters"].drift == ("partitions: catalogue 3, cluster 1",)
    assert all(
        topic.drift == ()
        for name, topic in topics.items()
        if name
        not in {
            "cron-progress",
            "dead-letters",
        }
    )
    groups = {group.name: group for group in status.kafka.groups}
    processors = groups["processors"]
    assert [(p.partition, p.committed, p.end, p.lag) for p in processors.partitions] == [
        (0, None, 0, 0),
        (1, 1, 3, 2),
        (2, None, 0, 0),
        (3, None, 0, 0),
        (4, None, 1, 1),
        (5, None, 0, 0),
    ]
    assert (processors.lag, processors.members) == (3, ())
    dispatchers = groups["dispatchers"]
    client = f"{drifted.group('dispatchers')}-consumer"
    assert dispatchers.members == (client,)
    assert {p.owner for p in dispatchers.partitions} == {client}
    relay = status.database.relay
    assert relay is not None
    assert (relay.waiting, relay.set_aside) == (2, 1)
    assert relay.oldest_s is not None
    assert 300 <= relay.oldest_s < 400

    # The command prints the same facts, and nothing from the Kafka client.
    assert (printed.code, printed.stderr) == (0, "")
    lines = printed.stdout.splitlines()
    assert lines[0] == f"kafka: {drifted.kafka.bootstrap_servers}, 1 broker"
    assert "  cron-progress     MISSING" in lines
    assert "  dead-letters      partitions   1  DRIFT partitions: catalogue 3, cluster 1" in lines
    assert "  processors         lag        3  members 0  0:0 1:2 2:0 3:0 4:1 5:0" in lines
    assert any(
        line.startswith("relay backlog: 2 outbox rows waiting, the oldest for 5 m")
        for line in lines
    )
    assert "dead letters: 0" in lines
    assert (as_json.code, as_json.stderr) == (0, "")
    body = orjson.loads(as_json.stdout)
    assert body["database"]["relay"]["waiting"] == 2
    assert [g["lag"] for g in body["kafka"]["groups"] if g["name"] == "processors"] == [3]


async def test_a_broker_that_does_not_answer_is_said_first_and_fails_the_command(
    settings: Settings,
) -> None:
    nowhere = settings.override(kafka__bootstrap_servers=f"127.0.0.1:{free_port()}")

    printed = await triggerline(with_free_ports(nowhere), "status")

    assert printed.code == 1
    assert printed.stderr == ""
    lines = printed.stdout.splitlines()
    assert lines[0] == (
        f"KAFKA UNREACHABLE: {nowhere.kafka.bootstrap_servers}: no answer (KafkaConnectionError)"
    )
    # What PostgreSQL and the dispatcher's port can say is still said.
    assert "relay backlog: 0 outbox rows waiting" in lines
    assert "dead letters: unknown (Kafka does not answer)" in lines
