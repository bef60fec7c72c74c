"""The outbox relay killed mid-stream loses nothing and never publishes stale over newer state.

Ingest runs as a real process; registry changes are committed while its relay drains the
outbox; the process is SIGKILLed while rows are both published and pending, more changes
commit while it is down, and a restarted ingest finishes the job. Afterwards the compacted
topic's last value per trigger equals the table (a tombstone for each deleted trigger), and each
trigger's revisions on the topic never go down.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Any

import pytest
from psycopg import AsyncConnection

from ingest.registry.relay import OutboxRelay
from ingest.registry.store import NewTrigger, create_project
from runtime.kafka import durable_producer
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG
from schemas.triggers import Target
from tests.integration.support.polling import eventually
from tests.integration.support.registry import (
    assert_topic_equals_table,
    change_many,
    change_one,
    create_trigger,
    only,
    outbox_counts,
)
from tests.integration.support.stages import stage_env, wait_until_ready, with_free_ports
from tests.integration.support.topic_reader import read_all

pytestmark = pytest.mark.integration

TRIGGERS = 40
CHANGES = 400


def start_ingest(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ingest"], env=stage_env(settings))


async def test_relay_killed_mid_stream_leaves_the_topic_equal_to_the_table(
    settings: Settings,
) -> None:
    settings = with_free_ports(settings)
    url = settings.database.url.get_secret_value()
    keyring = Keyring.from_setting(settings.secret_keys)
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        project_id = await create_project(conn, "outbox")
        ids = [
            (
                await create_trigger(
                    conn,
                    keyring,
                    NewTrigger(
                        project_id, "slack", f"t{index}", only(Target("noop")), secrets={"S": "v"}
                    ),
                )
            ).trigger_id
            for index in range(TRIGGERS)
        ]
        changes = asyncio.create_task(change_many(url, project_id, ids, CHANGES))

        ingest = start_ingest(settings)
        try:

            async def mid_stream() -> bool | None:
                published, pending = await outbox_counts(conn)
                return True if published > 0 and pending > 0 else None

            await eventually(mid_stream, timeout_s=60, interval_s=0.02)
            ingest.send_signal(signal.SIGKILL)
            ingest.wait(10)
            published_at_kill, pending_at_kill = await outbox_counts(conn)

            async def waiting() -> bool | None:
                # Changes keep committing while no relay runs; they wait in the outbox.
                _, pending = await outbox_counts(conn)
                return True if pending >= pending_at_kill + 20 else None

            await eventually(waiting, timeout_s=30)
            ingest = start_ingest(settings)
            await wait_until_ready(f"http://127.0.0.1:{settings.ingest.port}/readyz")
            await changes

            async def drained() -> bool | None:
                return True if (await outbox_counts(conn))[1] == 0 else None

            await eventually(drained, timeout_s=60)
        finally:
            ingest.send_signal(signal.SIGTERM)
            ingest.wait(20)

        cursor = await conn.execute("SELECT count(*) FROM trigger_config_outbox")
        total = await cursor.fetchone()
        assert total is not None
        assert published_at_kill < total[0]
        deleted = await conn.execute("SELECT count(*) FROM triggers WHERE deleted_at IS NOT NULL")
        assert (await deleted.fetchone()) != (0,)
        assert await assert_topic_equals_table(settings, conn) >= CHANGES // 2


class RelayDyingBeforeMarking(OutboxRelay):
    """A relay whose process dies after Kafka acknowledged a batch and before it was marked."""

    async def _mark_published(self, conn: AsyncConnection[Any], seqs: list[int]) -> None:
        raise RelayDied


class RelayDied(Exception):
    pass


async def test_a_successor_does_not_republish_what_its_predecessor_sent(
    settings: Settings,
) -> None:
    url = settings.database.url.get_secret_value()
    keyring = Keyring.from_setting(settings.secret_keys)
    topic = TRIGGER_CONFIG.name(settings.topics.prefix)
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        project_id = await create_project(conn, "outbox")
        trigger = await create_trigger(
            conn, keyring, NewTrigger(project_id, "slack", "t", only(Target("noop")))
        )
        await change_one(conn, project_id, trigger.trigger_id, step=1)
        producer = durable_producer(settings)
        await producer.start()
        try:
            with pytest.raises(RelayDied):
                await RelayDyingBeforeMarking(settings, producer).publish_pending(conn)
            # Committed while no relay runs.
            await change_one(conn, project_id, trigger.trigger_id, step=2)
            successor = OutboxRelay(settings, producer)
            await successor.recover()
            assert await successor.publish_pending(conn) == 3
            assert await successor.publish_pending(conn) == 0
        finally:
            await producer.stop()
        assert await outbox_counts(conn) == (3, 0)

    records = await read_all(settings, topic)
    revisions = [TRIGGER_CONFIG.decode(value).revision for _, value in records if value]
    # Each change exactly once, in commit order: not 1, 2, 1, 2, 3.
    assert revisions == [1, 2, 3]
