"""Slack events for the browser tests, as Slack's Events API sends them, signed with slack_sdk."""

from __future__ import annotations

import orjson

from tests.integration.support.pipeline import Pipeline
from tests.integration.support.polling import eventually
from tests.support.signing import slack_headers

SLACK_SECRET = "console-browser-slack-secret"


def slack_trigger(name: str, **fields: object) -> dict[str, object]:
    """The API body creating a Slack trigger for messages; `fields` replace or add top-level
    fields (a noop target unless they name destinations)."""
    body: dict[str, object] = {
        "definition": "slack",
        "name": name,
        "config": {"event_types": ["message"]},
        "secrets": {"SLACK_SIGNING_SECRET": SLACK_SECRET},
    }
    if "destinations" not in fields:
        body["target"] = {"kind": "noop"}
    return {**body, **fields}


def slack_message(event_id: str, channel: str, text: str) -> bytes:
    """A `message` event as Slack's Events API documents it."""
    return orjson.dumps(
        {
            "token": "XXYYZZ",
            "team_id": "T123ABC456",
            "api_app_id": "A123ABC456",
            "event": {
                "type": "message",
                "channel": channel,
                "user": "U123ABC456",
                "text": text,
                "ts": "1355517523.000005",
                "event_ts": "1355517523.000005",
                "channel_type": "channel",
            },
            "type": "event_callback",
            "event_id": event_id,
            "event_time": 1355517523,
        }
    )


async def post_slack(pipeline: Pipeline, trigger_id: str, body: bytes) -> None:
    """POST the signed event once the trigger has reached ingest (until then its route answers
    404); ingest must accept it."""

    async def accepted() -> bool | None:
        response = await pipeline.client.post(
            pipeline.webhook_url(trigger_id),
            content=body,
            headers=slack_headers(body, SLACK_SECRET),
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return True

    await eventually(accepted)
