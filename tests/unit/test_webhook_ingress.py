"""The framework-free webhook core, on answers that come before any hand-off to Kafka.

The view is a real TriggerConfigView fed records directly; the writer's producer is never
started, because none of these requests may reach it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial

import orjson
import pytest
from pydantic import SecretStr

from ingest.handoff import RawEventWriter
from ingest.rate_limit import RateLimit
from ingest.triggers import IngressTrigger, compile_ingress_trigger
from ingest.webhooks import WebhookIngress
from runtime.config_view import TriggerConfigView
from runtime.kafka import durable_producer
from runtime.secrets import Keyring, new_key_setting
from runtime.settings import Settings
from schemas.codec import RecordPosition
from schemas.records import TRIGGER_CONFIG
from schemas.triggers import DefinitionSlug, Target, TriggerConfig
from tests.integration.signing import slack_headers

pytestmark = pytest.mark.unit

LIMIT = 1024
SECRET = "unit-slack-secret"


def config(keyring: Keyring, trigger_id: str, definition: DefinitionSlug) -> TriggerConfig:
    return TriggerConfig(
        trigger_id=trigger_id,
        project_id="p1",
        definition=definition,
        name=trigger_id,
        status="active",
        target=Target("noop"),
        updated_at=datetime.now(UTC),
        revision=1,
        secrets={"SLACK_SIGNING_SECRET": keyring.encrypt(SECRET)},
    )


@pytest.fixture
async def webhooks() -> AsyncIterator[WebhookIngress]:
    settings = Settings().model_copy(update={"secret_keys": SecretStr(new_key_setting())})
    keyring = Keyring.from_setting(settings.secret_keys)
    compile_trigger = partial(
        compile_ingress_trigger, keyring=keyring, default_rate_limit=RateLimit(10, 10)
    )
    view: TriggerConfigView[IngressTrigger] = TriggerConfigView(settings, "ingest", compile_trigger)
    triggers: list[tuple[str, DefinitionSlug]] = [("slack", "slack"), ("cron", "cron")]
    for offset, (trigger_id, definition) in enumerate(triggers):
        record = TRIGGER_CONFIG.encode(config(keyring, trigger_id, definition))
        view.apply(trigger_id, record, RecordPosition("trigger-config", 0, offset))
    producer = durable_producer(settings)
    yield WebhookIngress(view, RawEventWriter(settings, producer), LIMIT)
    await producer.stop()


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    webhooks: WebhookIngress,
) -> None:
    body = b"x" * 10

    answer = await webhooks.receive("slack", {"content-length": str(LIMIT + 1)}, chunks(body))

    assert (answer.status, answer.outcome) == (413, "too_large")


@pytest.mark.parametrize("declared", ["\u00b2", "\uff11\uff12", "-1", ""])
async def test_a_content_length_that_is_not_ascii_digits_is_not_trusted(
    webhooks: WebhookIngress, declared: str
) -> None:
    body = orjson.dumps({"type": "event_callback"})
    headers = {**slack_headers(body, "not-the-secret"), "content-length": declared}

    answer = await webhooks.receive("slack", headers, chunks(body))

    # Not a crash, and not a 413: the body is read and then judged on its signature.
    assert (answer.status, answer.outcome) == (401, "unauthorized")


async def test_a_body_over_the_limit_without_a_length_is_cut_off_while_streaming(
    webhooks: WebhookIngress,
) -> None:

    answer = await webhooks.receive("slack", {}, chunks(*[b"y" * 512] * 3))

    assert (answer.status, answer.outcome) == (413, "too_large")


@pytest.mark.parametrize("trigger_id", ["cron", "missing"])
async def test_triggers_without_webhooks_are_not_found(
    webhooks: WebhookIngress, trigger_id: str
) -> None:
    body = orjson.dumps({"type": "event_callback"})

    answer = await webhooks.receive(trigger_id, slack_headers(body, SECRET), chunks(body))

    assert (answer.status, answer.outcome) == (404, "not_found")
    assert orjson.loads(answer.body) == {"error": "no webhook trigger with this id"}


async def test_a_signed_challenge_is_answered_in_plain_text(webhooks: WebhookIngress) -> None:
    body = orjson.dumps({"type": "url_verification", "challenge": "c-9"})

    answer = await webhooks.receive("slack", slack_headers(body, SECRET), chunks(body))

    assert (answer.status, answer.body, answer.media_type) == (
        200,
        b"c-9",
        "text/plain; charset=utf-8",
    )
