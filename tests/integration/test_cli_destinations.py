"""`triggerline destinations` against real PostgreSQL: it changes what the API shows, through
the same service, and refuses what the API refuses with the same message and fields."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from runtime.settings import Settings
from tests.integration.support.cli import refused_alike, triggerline
from tests.integration.support.control_plane import WHSEC, control_plane, project_with_key

pytestmark = pytest.mark.integration


async def cli_json(settings: Settings, *args: str) -> Any:
    result = await triggerline(settings, *args)
    assert result.code == 0, result.stderr
    return orjson.loads(result.stdout)


async def test_destinations_through_the_cli_are_what_the_api_shows(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    created = await triggerline(
        settings,
        *("triggers", "create", "--project", "acme", "--definition", "webhook", "--name", "o"),
        *("--target", "http", "--target-ref", "https://example.com/hook"),
        *("--target-signing-secret", WHSEC, "--secret", f"WEBHOOK_SECRET={WHSEC}"),
    )
    assert created.code == 0, created.stderr
    record = orjson.loads(created.stdout)
    # The config record is printed without secret values, not even encrypted.
    assert "k1:" not in created.stdout
    assert WHSEC not in created.stdout
    assert "target" not in record
    [default] = record["destinations"]
    assert (default["name"], default["target"]["has_signing_secret"]) == ("default", True)
    trigger_id = record["trigger_id"]
    scope = ("--project", "acme", trigger_id)

    added = await cli_json(
        settings,
        *("destinations", "add", *scope, "--name", "audit", "--kind", "kafka"),
        *("--ref", "acme.audit", "--max-attempts", "3", "--filter", "event.n > 1"),
        *("--transform", '{"n": event.n}', "--rate", "5", "--burst", "10"),
        *("--max-concurrency", "4"),
    )
    async with control_plane(settings) as client:
        url = f"/triggers/{trigger_id}/destinations"
        assert (await client.get(f"{url}/audit", headers=auth)).json() == added
        assert added["rate_limit"] == {"per_second": 5.0, "burst": 10}
        assert added["target"]["max_attempts"] == 3
        listed = await cli_json(settings, "destinations", "list", *scope)
        assert listed == (await client.get(url, headers=auth)).json()
        assert [d["name"] for d in listed] == ["default", "audit"]

        cleared = await cli_json(
            settings,
            *("destinations", "update", *scope, "--name", "audit"),
            *("--clear-filter", "--clear-rate-limit", "--max-concurrency", "8"),
        )
        assert (cleared["filter"], cleared["rate_limit"]) == (None, None)
        assert (cleared["transform"], cleared["max_concurrency"]) == ('{"n": event.n}', 8)
        assert (await client.get(f"{url}/audit", headers=auth)).json() == cleared

        # A new URL without the signing secret keeps the secret.
        moved = await cli_json(
            settings,
            *("destinations", "update", *scope, "--name", "default", "--kind", "http"),
            *("--ref", "https://example.com/v2"),
        )
        assert (moved["target"]["ref"], moved["target"]["has_signing_secret"]) == (
            "https://example.com/v2",
            True,
        )

        removed = await triggerline(settings, "destinations", "remove", *scope, "--name", "audit")
        assert removed.code == 0, removed.stderr
        trigger = (await client.get(f"/triggers/{trigger_id}", headers=auth)).json()
        assert [d["name"] for d in trigger["destinations"]] == ["default"]
        # Create, add, two updates, remove.
        assert trigger["revision"] == 5


async def test_the_cli_refuses_what_the_api_refuses(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        created = await client.post(
            "/triggers",
            json={
                "definition": "webhook",
                "name": "o",
                "target": {"kind": "noop"},
                "secrets": {"WEBHOOK_SECRET": WHSEC},
            },
            headers=auth,
        )
        trigger_id = created.json()["id"]
        url = f"/triggers/{trigger_id}/destinations"
        scope = ("--project", "acme", trigger_id)

        bad: dict[str, Any] = {
            "name": "bad",
            "target": {"kind": "noop"},
            "transform": "[event.a,\n 1 +]",
        }
        api = await client.post(url, json=bad, headers=auth)
        assert api.status_code == 422, api.text
        assert api.json()["errors"][0]["path"] == "transform"
        cli = await triggerline(
            settings,
            "destinations",
            "add",
            *scope,
            "--name",
            "bad",
            "--transform",
            bad["transform"],
        )
        refused_alike(api, cli)

        api = await client.post(
            url, json={"name": "default", "target": {"kind": "noop"}}, headers=auth
        )
        assert api.status_code == 409
        refused_alike(
            api, await triggerline(settings, "destinations", "add", *scope, "--name", "default")
        )

        api = await client.delete(f"{url}/default", headers=auth)
        assert api.status_code == 409
        cli = await triggerline(settings, "destinations", "remove", *scope, "--name", "default")
        refused_alike(api, cli)

        api = await client.patch(f"{url}/nope", json={}, headers=auth)
        assert api.status_code == 404
        cli = await triggerline(settings, "destinations", "update", *scope, "--name", "nope")
        refused_alike(api, cli)

        both = await triggerline(
            settings, "destinations", "update", *scope, "--name", "default", "--filter", "true",
            "--clear-filter",
        )  # fmt: skip
        assert both.code != 0
        assert "--clear-filter" in both.stderr
        assert (await client.get(f"/triggers/{trigger_id}", headers=auth)).json()["revision"] == 1
