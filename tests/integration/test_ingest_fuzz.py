"""Arbitrary bodies and headers against a real ingest: always a clear 4xx or a 2xx, never a 5xx.

Kafka is up throughout, so not even 503 is acceptable here (the outage test covers 503).
Requests are signed correctly often enough that the parsers behind the signature check are
fuzzed too, not only the rejection path.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier
from standardwebhooks import Webhook

from runtime.settings import Settings
from tests.integration.support.ingest_process import RunningIngest, running_ingest
from tests.integration.support.trigger_configs import publish_configs, trigger_config

pytestmark = pytest.mark.integration

SLACK_SECRET = "fuzz-slack-secret"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"fuzz-standard-webhooks-secret!!!").decode()
MAX_BODY = 4096
ANSWERS = {200, 400, 401, 404, 413, 415, 429}

# Printable ASCII without surrounding blanks: what an HTTP client lets through as a header value.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(
    str.strip
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what orjson can write; bigger ones come as text below
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
slack_envelopes = st.fixed_dictionaries(
    {"type": st.sampled_from(["event_callback", "url_verification", "app_rate_limited", "x"])},
    optional={
        "event_id": st.text(max_size=20) | st.integers(0, 2**32),
        "challenge": json_values,
        "event": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=200).map(str.encode),
    st.just(b'{"type": "event_callback", "event_time": 123456789012345678901234567890}'),
    json_values.map(orjson.dumps),
    st.dictionaries(st.text(max_size=10), json_values, max_size=4).map(orjson.dumps),
    slack_envelopes.map(orjson.dumps),
    slack_envelopes.map(lambda e: urlencode({"payload": orjson.dumps(e).decode()}).encode()),
    st.text(max_size=200).map(lambda t: urlencode({"payload": t}).encode()),
    st.binary(min_size=MAX_BODY + 1, max_size=MAX_BODY + 64),
)
# Weighted towards what a real sender does, so that many requests get past the signature.
content_types = st.one_of(
    st.just("application/json"),
    st.just("application/json"),
    st.just("application/json; charset=utf-8"),
    st.just("application/x-www-form-urlencoded"),
    st.sampled_from(["text/plain", "", "APPLICATION/JSON", "multipart/form-data"]),
    header_text,
)
signing = st.sampled_from(["valid", "valid", "valid", "wrong-secret", "garbage", "missing"])
timestamps = st.one_of(
    st.just("now"), st.just("now"), st.just("now"), st.just("stale"), header_text
)


@dataclass(frozen=True)
class Targets:
    ingest: RunningIngest
    slack: str
    webhook: str
    cron: str


@pytest.fixture(scope="module")
async def targets(base_settings: Settings) -> AsyncIterator[Targets]:
    async with running_ingest(base_settings, ingest__max_body_bytes=MAX_BODY) as ingest:
        unlimited = {"rate_limit": {"per_second": 100_000}}
        slack = trigger_config(
            ingest.settings, "slack", {"SLACK_SIGNING_SECRET": SLACK_SECRET}, config=unlimited
        )
        webhook = trigger_config(
            ingest.settings, "webhook", {"WEBHOOK_SECRET": WEBHOOK_SECRET}, config=unlimited
        )
        cron = trigger_config(ingest.settings, "cron", {})
        await publish_configs(ingest.settings, slack, webhook, cron)
        for trigger in (slack, webhook):
            await ingest.wait_until_known(trigger.trigger_id)
        yield Targets(ingest, slack.trigger_id, webhook.trigger_id, cron.trigger_id)


def timestamp_value(choice: str) -> str:
    if choice == "now":
        return str(int(time.time()))
    if choice == "stale":
        return str(int(time.time()) - 301)
    return choice


def slack_signature(body: bytes, timestamp: str, how: str, garbage: str) -> dict[str, str]:
    if how == "missing":
        return {}
    headers = {"x-slack-request-timestamp": timestamp, "x-slack-signature": garbage}
    if how == "garbage" or not is_utf8(body):
        # slack_sdk signs text only; Slack never sends anything else.
        return headers
    secret = SLACK_SECRET if how == "valid" else "not-the-secret"
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {**headers, "x-slack-signature": str(signature)}


def is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def standard_signature(
    body: bytes, timestamp: str, msg_id: str, how: str, garbage: str
) -> dict[str, str]:
    if how == "missing":
        return {}
    headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp}
    if how not in {"valid", "wrong-secret"} or not timestamp.isdigit() or not is_utf8(body):
        return {**headers, "webhook-signature": garbage}
    secret = WEBHOOK_SECRET if how == "valid" else "whsec_" + base64.b64encode(b"x" * 32).decode()
    at = datetime.fromtimestamp(int(timestamp), UTC)
    return {**headers, "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode())}


@dataclass(frozen=True)
class FuzzRequest:
    target: str
    unknown_id: str
    body: bytes
    signed_validly: bool
    headers: dict[str, str]


@st.composite
def fuzz_requests(draw: st.DrawFn) -> FuzzRequest:
    target = draw(st.sampled_from(["slack", "webhook", "cron", "unknown"]))
    body = draw(bodies)
    how = draw(signing)
    # Drawn right before the request is sent, so "now" is still now.
    timestamp = timestamp_value(draw(timestamps))
    garbage = draw(header_text)
    if target == "webhook":
        signature = standard_signature(body, timestamp, draw(header_text), how, garbage)
    else:
        signature = slack_signature(body, timestamp, how, garbage)
    extra = draw(
        st.dictionaries(
            st.sampled_from(["x-slack-retry-num", "x-slack-retry-reason", "user-agent"]),
            header_text,
        )
    )
    return FuzzRequest(
        target=target,
        unknown_id=draw(st.text("0123456789abcdef-", min_size=1, max_size=40)),
        body=body,
        signed_validly=how == "valid",
        headers={**extra, **signature, "content-type": draw(content_types)},
    )


@settings(max_examples=400, deadline=None)
@given(request=fuzz_requests())
async def test_no_request_gets_a_server_error(targets: Targets, request: FuzzRequest) -> None:
    trigger_id = getattr(targets, request.target, request.unknown_id)
    ingest = targets.ingest

    response = await ingest.client.post(
        ingest.url(trigger_id), content=request.body, headers=request.headers
    )

    event(f"{request.target}: {response.status_code}")
    assert response.status_code in ANSWERS, (response.status_code, response.text)
    if response.status_code != 200:
        assert isinstance(response.json()["error"], str)
    if (
        not request.signed_validly
        and request.target in {"slack", "webhook"}
        and len(request.body) <= MAX_BODY
    ):
        # Without a valid signature, nothing the body says may get it accepted.
        assert response.status_code == 401
