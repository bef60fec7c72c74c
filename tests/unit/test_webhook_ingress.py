"""The framework-free webhook core, on answers that come before any hand-off to Kafka.

The view is a real TriggerConfigView fed records directly; the writer's producer is never
started, because none of these requests may reach it. The refusal log runs on a fake clock.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial

import orjson
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from ingest.handoff import RawEventWriter
from ingest.rate_limit import RateLimit
from ingest.refusal_log import RefusalLog
from ingest.triggers import IngressTrigger, compile_ingress_trigger
from ingest.webhooks import ClientDisconnected, WebhookIngress
from runtime.config_view import TriggerConfigView
from runtime.kafka import durable_producer
from runtime.secrets import Keyring, new_key_setting
from runtime.settings import Settings
from schemas.codec import RecordPosition
from schemas.topics import TRIGGER_CONFIG
from schemas.triggers import DefinitionSlug, Target, TriggerConfig
from tests.support.signing import slack_headers, standard_webhook_headers

pytestmark = pytest.mark.unit

LIMIT = 1024
SECRET = "unit-slack-secret"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"unit-standard-webhooks-secret!!!").decode()
MAX_EVENT_ID = 64
LOG_INTERVAL_S = 60.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
        secrets={
            "SLACK_SIGNING_SECRET": keyring.encrypt(SECRET),
            "WEBHOOK_SECRET": keyring.encrypt(WEBHOOK_SECRET),
        },
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def webhooks(clock: FakeClock) -> AsyncIterator[WebhookIngress]:
    settings = Settings().override(
        secret_keys=SecretStr(new_key_setting()),
        ingest__max_body_bytes=LIMIT,
        ingest__max_event_id_length=MAX_EVENT_ID,
    )
    keyring = Keyring.from_setting(settings.secret_keys)
    compile_trigger = partial(
        compile_ingress_trigger, keyring=keyring, default_rate_limit=RateLimit(10, 10)
    )
    view: TriggerConfigView[IngressTrigger] = TriggerConfigView(settings, "ingest", compile_trigger)
    triggers: list[tuple[str, DefinitionSlug]] = [
        ("slack", "slack"),
        ("webhook", "webhook"),
        ("cron", "cron"),
    ]
    for offset, (trigger_id, definition) in enumerate(triggers):
        record = TRIGGER_CONFIG.encode(config(keyring, trigger_id, definition))
        view.apply(trigger_id, record, RecordPosition("trigger-config", 0, offset))
    # Sealed under a key this ingest has not loaded.
    other_keys = Keyring.from_setting(SecretStr(new_key_setting("other")))
    sealed = TRIGGER_CONFIG.encode(config(other_keys, "sealed", "webhook"))
    view.apply("sealed", sealed, RecordPosition("trigger-config", 0, len(triggers)))
    producer = durable_producer(settings)
    refusals = RefusalLog(LOG_INTERVAL_S, clock)
    yield WebhookIngress(view, RawEventWriter(settings, producer), settings, refusals)
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


def refused_count(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "triggerline_ingest_rejected_requests_total", {"reason": reason}
    )
    return value or 0.0


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, int]]:
    """(definition, reason, refusals left out since the last line) per line logged."""
    return [
        (fields["definition"], fields["reason"], fields["left_out_since_last_line"])
        for fields in (vars(r) for r in caplog.records if r.getMessage() == "request refused")
    ]


async def test_forged_requests_are_all_counted_and_logged_a_line_per_interval(
    webhooks: WebhookIngress, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="triggerline.ingest")
    body = orjson.dumps({"type": "event_callback", "event_id": "Ev1"})
    now = str(int(datetime.now(UTC).timestamp()))
    before = refused_count("mismatch")

    for _ in range(500):
        answer = await webhooks.receive(
            "slack", slack_headers(body, "guess", timestamp=now), chunks(body)
        )
        assert answer.status == 401
        clock.now += 0.01
    assert len(refusal_lines(caplog)) == 1
    clock.now += LOG_INTERVAL_S
    await webhooks.receive("slack", slack_headers(body, "guess", timestamp=now), chunks(body))

    assert refused_count("mismatch") == before + 501
    assert refusal_lines(caplog) == [("slack", "mismatch", 0), ("slack", "mismatch", 499)]


async def test_refusals_are_logged_per_definition_and_reason(
    webhooks: WebhookIngress, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="triggerline.ingest")
    body = orjson.dumps({"type": "event_callback"})
    now = str(int(datetime.now(UTC).timestamp()))
    requests = [
        ("slack", slack_headers(body, "guess", timestamp=now)),
        ("slack", slack_headers(body, SECRET, timestamp="1")),
        ("slack", slack_headers(body, SECRET, timestamp="9" * 400)),
        ("webhook", {"content-type": "application/json"}),
    ]
    for trigger_id, headers in requests * 3:
        answer = await webhooks.receive(trigger_id, headers, chunks(body))
        assert answer.status == 401

    assert refusal_lines(caplog) == [
        ("slack", "mismatch", 0),
        ("slack", "stale_timestamp", 0),
        ("slack", "malformed_timestamp", 0),
        ("webhook", "missing_headers", 0),
    ]


async def test_a_webhook_id_over_the_bound_is_400_naming_the_limit(
    webhooks: WebhookIngress,
) -> None:
    body = orjson.dumps({"order": 1})

    answer = await webhooks.receive(
        "webhook",
        standard_webhook_headers(body, WEBHOOK_SECRET, msg_id="m" * (MAX_EVENT_ID + 1)),
        chunks(body),
    )

    assert (answer.status, answer.outcome) == (400, "bad_request")
    assert orjson.loads(answer.body) == {
        "error": f"event id (webhook-id) of {MAX_EVENT_ID + 1} characters is over the limit of "
        f"{MAX_EVENT_ID} (TRIGGERLINE_INGEST_MAX_EVENT_ID_LENGTH)"
    }


async def test_a_slack_event_id_over_the_bound_is_400_naming_the_limit(
    webhooks: WebhookIngress,
) -> None:
    body = orjson.dumps({"type": "event_callback", "event_id": "E" * 500})

    answer = await webhooks.receive("slack", slack_headers(body, SECRET), chunks(body))

    assert (answer.status, answer.outcome) == (400, "bad_request")
    assert "event id (event_id) of 500 characters" in orjson.loads(answer.body)["error"]
    assert "TRIGGERLINE_INGEST_MAX_EVENT_ID_LENGTH" in orjson.loads(answer.body)["error"]


async def test_a_trigger_whose_config_cannot_be_decrypted_is_503_not_404(
    webhooks: WebhookIngress,
) -> None:
    body = orjson.dumps({"n": 1})

    answer = await webhooks.receive("sealed", {"content-type": "application/json"}, chunks(body))

    assert (answer.status, answer.outcome) == (503, "unavailable")


async def failing_body(failure: Exception) -> AsyncIterator[bytes]:
    yield b"{"
    raise failure


async def test_a_request_that_fails_unexpectedly_is_a_counted_500(
    webhooks: WebhookIngress,
) -> None:
    def errors() -> float:
        labels = {"definition": "slack", "outcome": "error"}
        return REGISTRY.get_sample_value("triggerline_ingest_requests_total", labels) or 0.0

    before = errors()

    answer = await webhooks.receive("slack", {}, failing_body(RuntimeError("a bug")))

    assert (answer.status, answer.outcome) == (500, "error")
    assert errors() == before + 1


async def test_a_sender_gone_before_its_body_arrived_is_not_answered(
    webhooks: WebhookIngress,
) -> None:
    with pytest.raises(ClientDisconnected):
        await webhooks.receive("slack", {}, failing_body(ClientDisconnected()))
