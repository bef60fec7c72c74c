"""Slack events as Slack's Events API sends them, posted signed with slack_sdk, for the tests
that drive the whole pipeline (integration and browser)."""

from __future__ import annotations

import orjson

from tests.integration.support.pipeline import Pipeline
from tests.integration.support.polling import eventually
from tests.support.signing import slack_headers


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


async def post_slack(pipeline: Pipeline, trigger_id: str, body: bytes, secret: str) -> None:
    """POST the signed event once the trigger has reached ingest (until then its route answers
    404); ingest must accept it."""

    async def accepted() -> bool | None:
        response = await pipeline.client.post(
            pipeline.webhook_url(trigger_id),
            content=body,
            headers=slack_headers(body, secret),
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return True

    await eventually(accepted)
