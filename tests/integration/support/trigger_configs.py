"""Trigger configs written straight to the trigger-config topic, as the outbox relay would.

Ingest tests that need to change a trigger (a rotated secret, a new rate limit) publish the new
revision themselves: what ingest reacts to is the topic, whoever wrote it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from runtime.kafka import durable_producer
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG
from schemas.triggers import DefinitionSlug, Target, TriggerConfig, TriggerStatus


def trigger_config(
    settings: Settings,
    definition: DefinitionSlug,
    secrets: dict[str, str],
    *,
    trigger_id: str | None = None,
    revision: int = 1,
    status: TriggerStatus = "active",
    config: dict[str, Any] | None = None,
) -> TriggerConfig:
    """A config whose plaintext `secrets` are encrypted with the test's own keys."""
    keyring = Keyring.from_setting(settings.secret_keys)
    trigger_id = trigger_id or str(uuid.uuid4())
    return TriggerConfig(
        trigger_id=trigger_id,
        project_id="p-ingest-tests",
        definition=definition,
        name=f"{definition}-{trigger_id[:8]}",
        status=status,
        target=Target("noop"),
        updated_at=datetime.now(UTC),
        revision=revision,
        config=config or {},
        secrets={name: keyring.encrypt(value) for name, value in secrets.items()},
    )


async def publish_configs(settings: Settings, *configs: TriggerConfig) -> None:
    producer = durable_producer(settings)
    await producer.start()
    try:
        topic = TRIGGER_CONFIG.name(settings.topics.prefix)
        for config in configs:
            await producer.send_and_wait(
                topic, TRIGGER_CONFIG.encode(config), key=config.trigger_id.encode()
            )
    finally:
        await producer.stop()
