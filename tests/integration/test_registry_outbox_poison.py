"""An outbox row Kafka will never take is set aside with its reason and the rest flow; the relay
leader prunes published and set-aside rows after their retention."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY
from psycopg import AsyncConnection

from ingest.registry.relay import OutboxRelay
from ingest.registry.store import NewTrigger, create_project
from runtime.kafka import durable_producer
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.topics import MAX_RECORD_BYTES, TRIGGER_CONFIG
from schemas.triggers import Target
from tests.integration.support.registry import change_one, create_trigger, only
from tests.integration.support.topic_reader import read_all

pytestmark = pytest.mark.integration


def set_aside_count() -> float:
    return REGISTRY.get_sample_value("triggerline_outbox_rows_set_aside_total") or 0.0


async def outbox(conn: AsyncConnection[Any]) -> dict[int, tuple[bool, str | None]]:
    """seq -> (published, error)."""
    cursor = await conn.execute(
        "SELECT seq, published_at IS NOT NULL, error FROM trigger_config_outbox ORDER BY seq"
    )
    return {seq: (published, error) for seq, published, error in await cursor.fetchall()}


async def test_a_poison_row_is_set_aside_and_later_changes_still_publish(
    settings: Settings,
) -> None:
    url = settings.database.url.get_secret_value()
    keyring = Keyring.from_setting(settings.secret_keys)
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        project_id = await create_project(conn, "outbox")
        poisoned = await create_trigger(
            conn, keyring, NewTrigger(project_id, "slack", "poisoned", only(Target("noop")))
        )
        # A row over the topic's record bound, as an older registry could have written it.
        await conn.execute(
            "INSERT INTO trigger_config_outbox (trigger_id, payload) VALUES (%s, %s)",
            (poisoned.trigger_id, b"x" * (MAX_RECORD_BYTES + 1)),
        )
        normal = await create_trigger(
            conn, keyring, NewTrigger(project_id, "slack", "normal", only(Target("noop")))
        )
        set_aside_before = set_aside_count()
        producer = durable_producer(settings)
        await producer.start()
        try:
            relay = OutboxRelay(settings, producer)
            assert await relay.publish_pending(conn) == 3
            # The poisoned trigger's next change supersedes the row set aside.
            await change_one(conn, project_id, poisoned.trigger_id, step=1)
            assert await relay.publish_pending(conn) == 1
            assert await relay.publish_pending(conn) == 0
        finally:
            await producer.stop()
        rows = await outbox(conn)

    [(first, _), (poison, error), (second, _), (later, _)] = rows.values()
    assert (first, second, later) == (True, True, True)
    assert not poison
    assert error is not None
    assert "MessageSizeTooLargeError" in error
    assert set_aside_count() == set_aside_before + 1

    records = await read_all(settings, TRIGGER_CONFIG.name(settings.topics.prefix))
    # Order holds per key (one partition each); across keys it depends on the partitioning.
    revisions: dict[str, list[int]] = {}
    for key, value in records:
        if key is not None and value is not None:
            revisions.setdefault(key.decode(), []).append(TRIGGER_CONFIG.decode(value).revision)
    assert revisions == {poisoned.trigger_id: [1, 2], normal.trigger_id: [1]}


async def test_the_leader_prunes_old_rows_in_batches(settings: Settings) -> None:
    url = settings.database.url.get_secret_value()
    async with await AsyncConnection.connect(url, autocommit=True) as conn:

        async def row(published_days_ago: float | None, failed_days_ago: float | None) -> int:
            cursor = await conn.execute(
                """
                INSERT INTO trigger_config_outbox (trigger_id, payload, published_at, failed_at,
                                                   error)
                VALUES (%s, NULL, now() - make_interval(days => %s),
                        now() - make_interval(days => %s), %s)
                RETURNING seq
                """,
                (
                    str(uuid.uuid4()),
                    published_days_ago,
                    failed_days_ago,
                    None if failed_days_ago is None else "MessageSizeTooLargeError: too big",
                ),
            )
            found = await cursor.fetchone()
            assert found is not None
            return int(found[0])

        old_published = [await row(8, None) for _ in range(3)]
        kept = {
            await row(6, None),  # published within the retention
            await row(None, 8),  # set aside, within its longer retention
            await row(None, None),  # still pending: never pruned
        }
        old_set_aside = await row(None, 31)

        producer = durable_producer(settings)
        relay = OutboxRelay(settings, producer)
        assert await relay.prune(conn) == len(old_published) + 1
        assert set(await outbox(conn)) == kept
        assert old_set_aside not in kept
        assert await relay.prune(conn) == 0
