"""Slack events for the browser tests, as Slack's Events API sends them, signed with slack_sdk."""

from __future__ import annotations

from tests.integration.support.pipeline import Pipeline
from tests.integration.support.slack_events import post_slack as post_signed
from tests.integration.support.slack_events import slack_message

__all__ = ["SLACK_SECRET", "post_slack", "slack_message", "slack_trigger"]

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


async def post_slack(pipeline: Pipeline, trigger_id: str, body: bytes) -> None:
    """POST the event signed with the browser tests' Slack secret, once ingest knows the trigger."""
    await post_signed(pipeline, trigger_id, body, SLACK_SECRET)
