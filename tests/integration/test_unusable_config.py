"""A trigger whose secrets this deployment cannot decrypt: its events are dead-lettered with the
reason, `/readyz` names the problem, and once the key is loaded a re-drive delivers them."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from pydantic import SecretStr

from runtime.redrive import RedriveFilter, read_letters, redrive
from runtime.secrets import Keyring, new_key_setting
from runtime.settings import Settings
from schemas.records import RawEvent
from schemas.topics import DELIVERY_LOG, RAW_EVENTS, TRIGGER_CONFIG
from schemas.triggers import TARGET_SIGNING_ENTRY, Target, TriggerConfig
from tests.integration.support.delivery_log import journey
from tests.integration.support.polling import eventually
from tests.integration.support.stages import running_stages, with_free_ports
from tests.integration.support.topic_reader import read_until
from tests.integration.support.topic_writer import produce

pytestmark = pytest.mark.integration

# A key this deployment has not loaded (yet).
MISSING_KEY = new_key_setting("retired")


def config_sealed_with(keyring: Keyring) -> TriggerConfig:
    signing_secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    return TriggerConfig(
        trigger_id=str(uuid.uuid4()),
        project_id=str(uuid.uuid4()),
        definition="slack",
        name="sealed",
        status="active",
        target=Target("noop"),
        updated_at=datetime.now(UTC),
        revision=1,
        secrets={TARGET_SIGNING_ENTRY: keyring.encrypt(signing_secret)},
    )


def raw_event_for(trigger: TriggerConfig, event_id: str) -> RawEvent:
    body = {
        "type": "event_callback",
        "team_id": "T1",
        "event_id": event_id,
        "event": {"type": "message", "channel": "C7", "ts": "7.1", "text": "sealed"},
    }
    return RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger.trigger_id,
        project_id=trigger.project_id,
        definition="slack",
        received_at=datetime.now(UTC),
        content_type="application/json",
        body=orjson.dumps(body).decode(),
    )


async def problems_at(url: str) -> list[str] | None:
    async with httpx.AsyncClient() as client:
        try:
            response = await client.get(url, timeout=1.0)
        except httpx.HTTPError:
            return None
    problems: list[str] = response.json()["problems"]
    return problems if response.status_code == 503 and problems else None


async def test_an_undecryptable_trigger_is_dead_lettered_and_named_until_its_key_is_loaded(
    settings: Settings,
) -> None:
    settings = with_free_ports(settings)
    trigger = config_sealed_with(Keyring.from_setting(SecretStr(MISSING_KEY)))
    config_topic = TRIGGER_CONFIG.name(settings.topics.prefix)
    await produce(
        settings, config_topic, trigger.trigger_id.encode(), TRIGGER_CONFIG.encode(trigger)
    )
    event_id = f"Ev{uuid.uuid4().hex[:10]}"
    raw = raw_event_for(trigger, event_id)
    raw_topic = RAW_EVENTS.name(settings.topics.prefix)
    await produce(settings, raw_topic, trigger.trigger_id.encode(), RAW_EVENTS.encode(raw))
    log_topic = DELIVERY_LOG.name(settings.topics.prefix)

    with running_stages(settings, "processors", "dispatchers"):
        ready_url = f"http://127.0.0.1:{settings.dispatcher.metrics_port}/readyz"
        problems = await eventually(lambda: problems_at(ready_url), 60)
        records = await read_until(
            settings,
            log_topic,
            lambda seen: ("dispatcher", "dead_lettered") in journey(seen, event_id),
        )

    assert problems == [
        f"trigger {trigger.trigger_id}: secret was encrypted with key 'retired', which is not "
        "loaded; it is not among this process's TRIGGERLINE_SECRET_KEYS"
    ]
    assert journey(records, event_id) == [("processor", "routed"), ("dispatcher", "dead_lettered")]
    letters = await read_letters(settings)
    [letter] = letters
    assert (letter.stage, letter.reason, letter.trigger_id) == (
        "dispatcher",
        "trigger_unusable",
        trigger.trigger_id,
    )

    # The operator loads the key; the letter goes back and is delivered.
    fixed = settings.override(
        secret_keys=SecretStr(f"{settings.secret_keys.get_secret_value()},{MISSING_KEY}")
    )
    summary = await redrive(fixed, letters, RedriveFilter(trigger_id=trigger.trigger_id))
    assert summary.redriven == 1
    with running_stages(fixed, "dispatchers"):
        records = await read_until(
            settings, log_topic, lambda seen: ("dispatcher", "delivered") in journey(seen, event_id)
        )
    assert journey(records, event_id)[-1] == ("dispatcher", "delivered")
