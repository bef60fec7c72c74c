"""GitHub deliveries through a real ingest and real processors on real Kafka and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import httpx
import orjson
import pytest

from runtime.settings import Settings
from tests.integration.support.kind_journeys import KindPipeline, kind_pipeline

pytestmark = pytest.mark.integration

SECRET = "github-e2e-secret"


def github_request(
    event: str, payload: object, secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    return body, {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


async def ping(pipeline: KindPipeline) -> httpx.Response:
    return await pipeline.post(*github_request("ping", {"zen": "Keep it logically awesome."}))


async def test_github_events_are_verified_typed_correlated_and_pings_ignored(
    settings: Settings,
) -> None:
    config = {"event_types": ["issues.opened", "push"]}
    secrets = {"GITHUB_WEBHOOK_SECRET": SECRET}
    async with kind_pipeline(settings, "github", secrets, config, ping) as pipeline:
        opened = github_request(
            "issues",
            {"action": "opened", "issue": {"number": 7}, "repository": {"full_name": "octo/app"}},
        )
        closed = github_request(
            "issues",
            {"action": "closed", "issue": {"number": 7}, "repository": {"full_name": "octo/app"}},
        )
        pinged = github_request("ping", {"zen": "Approachable is better than simple."})
        for body, headers in (opened, closed, pinged):
            answer = await pipeline.post(body, headers)
            assert answer.status_code == 200, answer.text

        forged_body, forged_headers = github_request("issues", {"action": "opened"}, "not-it")
        forged = await pipeline.post(forged_body, forged_headers)
        assert forged.status_code == 401

        ids = {
            name: headers["x-github-delivery"]
            for name, (_, headers) in {"opened": opened, "closed": closed, "ping": pinged}.items()
        }
        decisions = await pipeline.decisions(set(ids.values()))
        routed = {event.id: event for event in await pipeline.routed()}

    assert decisions[ids["opened"]].outcome == "routed"
    assert decisions[ids["opened"]].correlation_id == "octo/app#7"
    assert routed[ids["opened"]].type == "github.issues.opened"
    assert routed[ids["opened"]].subject == "octo/app#7"
    issue_data = routed[ids["opened"]].data
    assert isinstance(issue_data, dict)
    assert issue_data["issue"] == {"number": 7}
    assert decisions[ids["closed"]].outcome == "skipped"
    assert "issues.closed" in (decisions[ids["closed"]].reason or "")
    assert decisions[ids["ping"]].outcome == "ignored"
    assert "ping" in (decisions[ids["ping"]].reason or "")
