"""A trigger created through the API receives webhooks; once deleted, its URL answers 404.

The webhook route looks triggers up in the trigger-config view, which learns of both changes
only through the outbox relay and the compacted topic.
"""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from slack_sdk.signature import SignatureVerifier

from runtime.settings import Settings
from tests.integration.support.control_plane import control_plane, project_with_key
from tests.integration.support.polling import eventually

pytestmark = pytest.mark.integration

SIGNING = "lookup-signing-secret"


def signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return {
        "content-type": "application/json",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": signature,
    }


async def test_deleted_triggers_stop_receiving_webhooks(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    body = orjson.dumps({"type": "url_verification", "challenge": "c-1"})
    async with control_plane(settings) as client:
        created = await client.post(
            "/triggers",
            json={
                "definition": "slack",
                "name": "support",
                "target": {"kind": "noop"},
                "config": {"event_types": ["message"]},
                "secrets": {"SLACK_SIGNING_SECRET": SIGNING},
            },
            headers=auth,
        )
        trigger = created.json()
        webhook = httpx.URL(trigger["webhook_url"]).path

        async def answered(status: int) -> httpx.Response | None:
            response = await client.post(webhook, content=body, headers=signed(body))
            return response if response.status_code == status else None

        known = await eventually(lambda: answered(200))
        assert known.text == "c-1"
        # The URL's id is looked up in its canonical form, whatever its case.
        upper = webhook.replace(trigger["id"], trigger["id"].upper())
        shouted = await client.post(upper, content=body, headers=signed(body))
        assert shouted.status_code == 200, shouted.text
        urn = webhook.replace(trigger["id"], f"urn:uuid:{trigger['id']}")
        assert (await client.post(urn, content=body, headers=signed(body))).status_code == 404

        assert (await client.delete(f"/triggers/{trigger['id']}", headers=auth)).status_code == 204
        gone = await eventually(lambda: answered(404))
        assert "no webhook trigger" in gone.json()["error"]
