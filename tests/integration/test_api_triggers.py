"""The trigger API against real PostgreSQL: status codes, validation paths, partial updates,
soft delete, and the outbox records each change leaves behind."""

from __future__ import annotations

import httpx
import pytest
from psycopg import AsyncConnection

from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG
from schemas.triggers import TriggerConfig
from tests.integration.support.control_plane import control_plane, project_with_key

pytestmark = pytest.mark.integration

SIGNING = "slack-signing-secret-value"


def slack_trigger(name: str = "support", **overrides: object) -> dict[str, object]:
    return {
        "definition": "slack",
        "name": name,
        "target": {"kind": "noop", "display_name": "log only"},
        "config": {"event_types": ["message", "app_mention"]},
        "secrets": {"SLACK_SIGNING_SECRET": SIGNING},
        **overrides,
    }


async def outbox(settings: Settings, trigger_id: str) -> list[TriggerConfig | None]:
    async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as conn:
        cursor = await conn.execute(
            "SELECT payload FROM trigger_config_outbox WHERE trigger_id = %s ORDER BY seq",
            (trigger_id,),
        )
        rows = await cursor.fetchall()
    return [None if p is None else TRIGGER_CONFIG.decode(bytes(p)) for (p,) in rows]


def paths(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {error["path"]: error["message"] for error in response.json()["errors"]}


async def test_create_get_list_and_the_first_changelog_record(settings: Settings) -> None:
    project_id, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        created = await client.post("/triggers", json=slack_trigger(), headers=auth)
        assert created.status_code == 201, created.text
        trigger = created.json()
        assert trigger["project_id"] == project_id
        assert trigger["status"] == "active"
        assert trigger["secret_names"] == ["SLACK_SIGNING_SECRET"]
        assert (
            trigger["webhook_url"]
            == f"{settings.registry.public_base_url}/webhooks/{trigger['id']}"
        )
        assert SIGNING not in created.text

        fetched = await client.get(f"/triggers/{trigger['id']}", headers=auth)
        assert fetched.json() == trigger
        listed = await client.get("/triggers", headers=auth)
        assert [t["id"] for t in listed.json()["items"]] == [trigger["id"]]

        cron = await client.post(
            "/triggers",
            json={
                "definition": "cron",
                "name": "nightly",
                "target": {"kind": "kafka", "ref": "acme.nightly"},
                "config": {"schedule": "@daily", "timezone": "Europe/Berlin"},
            },
            headers=auth,
        )
        assert cron.status_code == 201, cron.text
        assert cron.json()["webhook_url"] is None
        assert cron.json()["config"]["misfire"] == "skip"

    [record] = await outbox(settings, trigger["id"])
    assert record is not None
    assert (record.definition, record.status, record.revision) == ("slack", "active", 1)
    assert record.config == {"event_types": ["message", "app_mention"]}
    assert (
        Keyring.from_setting(settings.secret_keys).decrypt(record.secrets["SLACK_SIGNING_SECRET"])
        == SIGNING
    )


async def test_invalid_config_is_422_with_field_paths(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        bad_slack = await client.post(
            "/triggers",
            json=slack_trigger(
                config={"event_types": ["message", "app_mentions"], "filter": "event.text ==\n"},
                secrets={},
            ),
            headers=auth,
        )
        errors = paths(bad_slack)
        assert "Slack Events API" in errors["config.event_types[1]"]
        assert errors["config.filter"].startswith("line 2, column 1:")
        assert "needs this secret" in errors["secrets.SLACK_SIGNING_SECRET"]

        not_bool = await client.post(
            "/triggers",
            json=slack_trigger(config={"event_types": ["message"], "filter": "1"}),
            headers=auth,
        )
        assert "line 1, column 1" in paths(not_bool)["config.filter"]

        bad_cron = await client.post(
            "/triggers",
            json={
                "definition": "cron",
                "name": "n",
                "target": {"kind": "noop"},
                "config": {"schedule": "61 * * * *", "timezone": "Mars/Olympus", "x": 1},
            },
            headers=auth,
        )
        errors = paths(bad_cron)
        assert set(errors) == {"config.schedule", "config.timezone", "config.x"}

        bad_webhook = await client.post(
            "/triggers",
            json={
                "definition": "webhook",
                "name": "w",
                "target": {"kind": "http", "ref": "ftp://example.com"},
                "config": {"correlation": "event.id == 1"},
                "secrets": {"WEBHOOK_SECRET": "not-a-whsec"},
            },
            headers=auth,
        )
        errors = paths(bad_webhook)
        assert "string" in errors["config.correlation"]
        assert set(errors) >= {"target.ref", "target.signing_secret", "secrets.WEBHOOK_SECRET"}
        assert "not-a-whsec" not in bad_webhook.text

        too_long = await client.post("/triggers", json=slack_trigger(name="x" * 201), headers=auth)
        assert "name" in paths(too_long)

        assert (await client.get("/triggers", headers=auth)).json()["items"] == []


async def test_malformed_requests_are_400_and_unknown_ids_404(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        for body in (b"{not json", b"[1, 2]", b'"text"', b""):
            response = await client.post(
                "/triggers", content=body, headers={**auth, "content-type": "application/json"}
            )
            assert response.status_code == 400, (body, response.text)
        assert (await client.get("/triggers?limit=0", headers=auth)).status_code == 400
        assert (await client.get("/triggers?cursor=garbage", headers=auth)).status_code == 400
        assert (await client.get("/triggers?status=asleep", headers=auth)).status_code == 400
        for unknown in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
            assert (await client.get(f"/triggers/{unknown}", headers=auth)).status_code == 404
            assert (await client.delete(f"/triggers/{unknown}", headers=auth)).status_code == 404
            patched = await client.patch(f"/triggers/{unknown}", json={}, headers=auth)
            assert patched.status_code == 404


async def test_partial_update_pause_resume_and_changelog_order(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        environment = (
            await client.post(
                "/environments",
                json={"name": "prod", "secrets": {"SLACK_SIGNING_SECRET": "from-env"}},
                headers=auth,
            )
        ).json()
        trigger = (
            await client.post(
                "/triggers", json=slack_trigger(environment_id=environment["id"]), headers=auth
            )
        ).json()
        url = f"/triggers/{trigger['id']}"
        assert trigger["environment_id"] == environment["id"]

        renamed = (await client.patch(url, json={"name": "renamed"}, headers=auth)).json()
        assert renamed["name"] == "renamed"
        assert renamed["environment_id"] == environment["id"]
        assert renamed["config"] == trigger["config"]
        assert renamed["revision"] == 2

        paused = (await client.post(f"{url}/pause", headers=auth)).json()
        assert paused["status"] == "paused"
        again = (await client.post(f"{url}/pause", headers=auth)).json()
        assert again["revision"] == paused["revision"]

        cleared = await client.patch(
            url,
            json={"environment_id": None, "config": {"event_types": ["reaction_added"]}},
            headers=auth,
        )
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["environment_id"] is None
        assert cleared.json()["status"] == "paused"

        refused = await client.patch(
            url, json={"definition": "cron", "name": None, "secrets": {"X": None}}, headers=auth
        )
        errors = paths(refused)
        assert set(errors) == {"definition", "name"}
        dropped = await client.patch(
            url, json={"secrets": {"SLACK_SIGNING_SECRET": None}}, headers=auth
        )
        assert "secrets.SLACK_SIGNING_SECRET" in paths(dropped)

        resumed = (await client.post(f"{url}/resume", headers=auth)).json()
        assert resumed["status"] == "active"

    records = await outbox(settings, trigger["id"])
    assert [r.revision for r in records if r] == [1, 2, 3, 4, 5]
    assert [r.status for r in records if r] == ["active", "active", "paused", "paused", "active"]
    first = records[0]
    assert first is not None
    # The trigger's own secret wins over the environment's.
    keyring = Keyring.from_setting(settings.secret_keys)
    assert keyring.decrypt(first.secrets["SLACK_SIGNING_SECRET"]) == SIGNING


async def test_delete_hides_the_trigger_frees_its_name_and_writes_a_tombstone(
    settings: Settings,
) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        first = (await client.post("/triggers", json=slack_trigger(), headers=auth)).json()
        conflict = await client.post("/triggers", json=slack_trigger(), headers=auth)
        assert conflict.status_code == 409
        assert "support" in conflict.json()["error"]

        url = f"/triggers/{first['id']}"
        assert (await client.delete(url, headers=auth)).status_code == 204
        assert (await client.get(url, headers=auth)).status_code == 404
        assert (await client.patch(url, json={"name": "x"}, headers=auth)).status_code == 404
        assert (await client.post(f"{url}/pause", headers=auth)).status_code == 404
        assert (await client.delete(url, headers=auth)).status_code == 404
        assert (await client.get("/triggers", headers=auth)).json()["items"] == []

        second = await client.post("/triggers", json=slack_trigger(), headers=auth)
        assert second.status_code == 201
        assert second.json()["id"] != first["id"]

    records = await outbox(settings, first["id"])
    assert records[-1] is None
    assert len(records) == 2


async def test_list_pages_and_filters(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        ids = []
        for index in range(7):
            created = await client.post(
                "/triggers",
                json=slack_trigger(f"t{index}", status="paused" if index % 3 == 0 else "active"),
                headers=auth,
            )
            ids.append(created.json()["id"])
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/triggers", params=params, headers=auth)).json()
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ids
        paused = await client.get("/triggers", params={"status": "paused"}, headers=auth)
        assert [t["id"] for t in paused.json()["items"]] == [ids[0], ids[3], ids[6]]
        crons = await client.get("/triggers", params={"definition": "cron"}, headers=auth)
        assert crons.json()["items"] == []


async def test_definitions_list_their_schemas_secrets_and_verification(
    settings: Settings,
) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        assert (await client.get("/definitions")).status_code == 401
        listed = {d["slug"]: d for d in (await client.get("/definitions", headers=auth)).json()}
    assert set(listed) == {"slack", "webhook", "cron", "github", "stripe"}
    github, stripe = listed["github"], listed["stripe"]
    assert (github["verification"], github["required_secrets"]) == (
        "github_sha256",
        ["GITHUB_WEBHOOK_SECRET"],
    )
    assert (stripe["verification"], stripe["required_secrets"]) == (
        "stripe_v1",
        ["STRIPE_WEBHOOK_SECRET"],
    )
    slack, webhook, cron = listed["slack"], listed["webhook"], listed["cron"]
    assert (slack["kind"], slack["verification"]) == ("webhook", "slack_v0")
    assert slack["required_secrets"] == ["SLACK_SIGNING_SECRET"]
    event_types = slack["config_schema"]["properties"]["event_types"]
    assert {"message", "app_mention", "reaction_added"} <= set(event_types["items"]["enum"])
    assert (webhook["verification"], webhook["required_secrets"]) == (
        "standard_webhooks",
        ["WEBHOOK_SECRET"],
    )
    assert set(webhook["config_schema"]["properties"]) >= {"filter", "correlation"}
    assert (cron["kind"], cron["verification"], cron["required_secrets"]) == ("schedule", None, [])
    assert cron["config_schema"]["required"] == ["schedule"]
    assert cron["config_schema"]["properties"]["misfire"]["enum"] == [
        "skip",
        "fire_once",
        "backfill",
    ]
