"""Kafka down: registry changes wait in the outbox and all reach the topic once it is back.

Runs on a broker of its own (tests/integration/support/throwaway_kafka.py), which it stops while
changes commit and then restarts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg import AsyncConnection

from deploy.migrate import apply_migrations
from ingest.registry.store import NewTrigger, create_project
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.triggers import Target
from tests.integration.support.isolation import isolated_settings, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.registry import (
    assert_topic_equals_table,
    change_many,
    create_trigger,
    only,
    outbox_counts,
)
from tests.integration.support.stages import free_port, running_stages, wait_until_ready
from tests.integration.support.throwaway_kafka import ThrowawayBroker

pytestmark = pytest.mark.integration

TRIGGERS = 10
CHANGES = 80


async def test_changes_wait_for_kafka_and_none_is_lost(
    base_settings: Settings, tmp_path: Path
) -> None:
    broker = ThrowawayBroker.under(tmp_path / "registry-outage", base_settings)
    await broker.start()
    try:
        with scratch_database(base_settings.database.url.get_secret_value()) as url:
            apply_migrations(url)
            settings = await isolated_settings(
                base_settings.override(kafka__bootstrap_servers=broker.bootstrap_servers),
                url,
                ingest__port=free_port(),
            )
            keyring = Keyring.from_setting(settings.secret_keys)
            async with await AsyncConnection.connect(url, autocommit=True) as conn:
                project_id = await create_project(conn, "outage")
                ids = [
                    (
                        await create_trigger(
                            conn,
                            keyring,
                            NewTrigger(project_id, "cron", f"t{i}", only(Target("noop"))),
                        )
                    ).trigger_id
                    for i in range(TRIGGERS)
                ]

                async def drained() -> bool | None:
                    return True if (await outbox_counts(conn))[1] == 0 else None

                with running_stages(settings, "ingest"):
                    await wait_until_ready(f"http://127.0.0.1:{settings.ingest.port}/readyz")
                    await eventually(drained, timeout_s=60)

                    await broker.stop()
                    await change_many(url, project_id, ids, CHANGES)
                    published, pending = await outbox_counts(conn)
                    assert pending >= CHANGES - CHANGES // 37 - TRIGGERS
                    assert published == TRIGGERS

                    await broker.start()
                    await eventually(drained, timeout_s=90)

                assert await assert_topic_equals_table(settings, conn) >= CHANGES // 2
    finally:
        await broker.stop()
