"""A trigger's destinations through the API on real PostgreSQL, with the outbox relay publishing
to real Kafka: created as a list or as the single `target`, refused with field paths, managed one
at a time under /triggers/{id}/destinations, and published in the trigger's config record."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.topics import TRIGGER_CONFIG
from schemas.triggers import TARGET_SIGNING_ENTRY, TriggerConfig
from tests.integration.support.control_plane import (
    WHSEC,
    control_plane,
    project_with_key,
    webhook_trigger,
)
from tests.integration.support.topic_reader import read_until

pytestmark = pytest.mark.integration

OTHER_WHSEC = "whsec_bm90LXRoZS1maXJzdC1zZWNyZXQtYXQtYWxs"
HOOK = {"kind": "http", "ref": "https://example.com/hook", "signing_secret": WHSEC}


def audit(**fields: Any) -> dict[str, Any]:
    return {
        "name": "audit",
        "target": {"kind": "kafka", "ref": "acme.audit", "max_attempts": 3},
        "filter": 'event.type == "order.paid"',
        "transform": '{"order": event.id}',
        "rate_limit": {"per_second": 5, "burst": 10},
        "max_concurrency": 4,
        **fields,
    }


def with_destinations(name: str, *destinations: dict[str, Any]) -> dict[str, Any]:
    """A webhook trigger's body with these destinations instead of a target."""
    body = webhook_trigger(name, destinations=list(destinations))
    del body["target"]
    return body


def paths(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {error["path"]: error["message"] for error in response.json()["errors"]}


async def published(settings: Settings, trigger_id: str, revision: int) -> TriggerConfig:
    """The trigger's record of this revision, once the relay put it on the trigger-config topic."""
    found: list[TriggerConfig] = []

    def done(records: list[tuple[bytes | None, bytes | None]]) -> bool:
        found[:] = [
            TRIGGER_CONFIG.decode(value)
            for key, value in records
            if key == trigger_id.encode() and value is not None
        ]
        return any(record.revision == revision for record in found)

    await read_until(settings, TRIGGER_CONFIG.name(settings.topics.prefix), done, timeout_s=30)
    return next(record for record in found if record.revision == revision)


async def test_a_trigger_created_with_destinations_publishes_them(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        body = with_destinations("orders", {"name": "hook", "target": HOOK}, audit())
        created = await client.post("/triggers", json=body, headers=auth)
        assert created.status_code == 201, created.text
        trigger = created.json()
        assert WHSEC not in created.text
        # No destination is named "default", so there is no single `target` to show.
        assert trigger["target"] is None
        hook, shown_audit = trigger["destinations"]
        assert hook["name"] == "hook"
        assert hook["target"]["has_signing_secret"] is True
        assert hook["filter"] is hook["transform"] is hook["rate_limit"] is None
        assert shown_audit == {
            "name": "audit",
            "target": {
                "kind": "kafka",
                "ref": "acme.audit",
                "display_name": "",
                "timeout_s": 10.0,
                "max_attempts": 3,
                "max_age_s": 86400.0,
                "has_signing_secret": False,
            },
            "filter": 'event.type == "order.paid"',
            "transform": '{"order": event.id}',
            "rate_limit": {"per_second": 5.0, "burst": 10},
            "max_concurrency": 4,
        }
        listed = await client.get(f"/triggers/{trigger['id']}/destinations", headers=auth)
        assert listed.json() == trigger["destinations"]
        # Published by the app's outbox relay, onto the topic the data plane reads.
        record = await published(settings, trigger["id"], 1)
        assert [d.name for d in record.destinations] == ["hook", "audit"]
        assert TARGET_SIGNING_ENTRY not in record.secrets
        keyring = Keyring.from_setting(settings.secret_keys)
        signing = record.destinations[0].signing_secret
        assert signing is not None
        assert keyring.decrypt(signing) == WHSEC
        sent = record.destinations[1]
        assert (sent.target.kind, sent.target.ref, sent.target.max_attempts) == (
            "kafka",
            "acme.audit",
            3,
        )
        assert (sent.filter, sent.transform, sent.max_concurrency) == (
            'event.type == "order.paid"',
            '{"order": event.id}',
            4,
        )
        assert sent.rate_limit is not None
        assert (sent.rate_limit.per_second, sent.rate_limit.burst) == (5.0, 10)


async def test_a_target_is_the_destination_default(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        created = await client.post(
            "/triggers", json=webhook_trigger("orders", target=HOOK), headers=auth
        )
        assert created.status_code == 201, created.text
        trigger = created.json()
        [default] = trigger["destinations"]
        assert default["name"] == "default"
        assert trigger["target"] == default["target"]
        assert trigger["target"]["has_signing_secret"] is True
        url = f"/triggers/{trigger['id']}"

        # `target` on update replaces the default's target: the secret stays when omitted, and
        # the destination's own rules stay.
        filtered = await client.patch(
            f"{url}/destinations/default", json={"filter": "event.n > 1"}, headers=auth
        )
        assert filtered.status_code == 200, filtered.text
        moved = await client.patch(
            url, json={"target": {"kind": "http", "ref": "https://example.com/v2"}}, headers=auth
        )
        assert moved.status_code == 200, moved.text
        [default] = moved.json()["destinations"]
        assert default["target"]["ref"] == "https://example.com/v2"
        assert default["target"]["has_signing_secret"] is True
        assert default["filter"] == "event.n > 1"

        # `destinations` replaces the list; a destination keeps its secret by name.
        replaced = await client.patch(
            url,
            json={
                "destinations": [
                    audit(),
                    {"name": "default", "target": {"kind": "http", "ref": "https://x.example"}},
                ]
            },
            headers=auth,
        )
        assert replaced.status_code == 200, replaced.text
        audit_out, default = replaced.json()["destinations"]
        assert audit_out["name"] == "audit"
        assert default["target"]["has_signing_secret"] is True
        assert default["filter"] is None
        assert replaced.json()["target"] == default["target"]

        # Without a "default", `target` adds one at the end.
        await client.delete(f"{url}/destinations/default", headers=auth)
        added = await client.patch(url, json={"target": {"kind": "noop"}}, headers=auth)
        assert added.status_code == 200, added.text
        assert [d["name"] for d in added.json()["destinations"]] == ["audit", "default"]
        assert added.json()["revision"] == 6
        record = await published(settings, trigger["id"], 6)
        assert [d.name for d in record.destinations] == ["audit", "default"]


async def test_target_and_destinations_are_one_or_the_other(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        both = webhook_trigger("a", destinations=[audit()])
        errors = paths(await client.post("/triggers", json=both, headers=auth))
        assert errors == {"destinations": "give `target` or `destinations`, not both"}

        neither = with_destinations("b")
        del neither["destinations"]
        errors = paths(await client.post("/triggers", json=neither, headers=auth))
        assert "`destinations`" in errors["target"]

        created = await client.post("/triggers", json=webhook_trigger("c"), headers=auth)
        update = {"target": {"kind": "noop"}, "destinations": [audit()]}
        url = f"/triggers/{created.json()['id']}"
        assert "destinations" in paths(await client.patch(url, json=update, headers=auth))
        assert "destinations" in paths(
            await client.patch(url, json={"destinations": None}, headers=auth)
        )
        assert (await client.get("/triggers", headers=auth)).json()["items"] == [created.json()]


async def test_bad_destinations_are_refused_with_their_paths(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:

        async def refused(*destinations: dict[str, Any]) -> dict[str, str]:
            body = with_destinations("orders", *destinations)
            return paths(await client.post("/triggers", json=body, headers=auth))

        errors = await refused(audit(transform='{"order": event.id,\n  ]'))
        assert errors["destinations[0].transform"].startswith("line 2, column 3:")
        errors = await refused(audit(), audit(filter="event.x +"))
        assert errors["destinations[1].filter"].startswith("line 1, column")

        errors = await refused(audit(), {"name": "audit", "target": {"kind": "noop"}})
        assert set(errors) == {"destinations[1].name"}
        assert "'audit'" in errors["destinations[1].name"]

        many = [{"name": f"d{i}", "target": {"kind": "noop"}} for i in range(11)]
        errors = await refused(*many)
        assert "at most 10 destinations (TRIGGERLINE_MAX_DESTINATIONS)" in errors["destinations"]

        errors = await refused(
            audit(),
            {"name": "hook", "target": {"kind": "http", "ref": "https://example.com"}},
            {"name": "loop", "target": {"kind": "kafka", "ref": f"{settings.topics.prefix}.x"}},
            {"name": "bad", "target": {"kind": "noop", "ref": "x", "signing_secret": "nope"}},
        )
        assert set(errors) == {
            "destinations[1].target.signing_secret",
            "destinations[2].target.ref",
            "destinations[3].target.ref",
            "destinations[3].target.signing_secret",
        }
        assert "nope" not in str(errors)
        assert (await client.get("/triggers", headers=auth)).json()["items"] == []


async def test_one_destination_at_a_time(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        created = await client.post("/triggers", json=webhook_trigger("orders"), headers=auth)
        url = f"/triggers/{created.json()['id']}/destinations"

        added = await client.post(url, json={"name": "hook", "target": HOOK}, headers=auth)
        assert added.status_code == 201, added.text
        assert added.json()["target"]["has_signing_secret"] is True
        taken = await client.post(url, json={"name": "hook", "target": HOOK}, headers=auth)
        assert taken.status_code == 409, taken.text
        assert "'hook'" in taken.json()["error"]
        unsigned = await client.post(
            url, json={"name": "h2", "target": {**HOOK, "signing_secret": None}}, headers=auth
        )
        assert "target.signing_secret" in paths(unsigned)
        assert (await client.get(f"{url}/hook", headers=auth)).json() == added.json()

        # PUT replaces the whole destination; an http target keeps its secret when omitted.
        put = await client.put(
            f"{url}/hook",
            json={"target": {"kind": "http", "ref": "https://example.com/v2"}, **_rules()},
            headers=auth,
        )
        assert put.status_code == 200, put.text
        assert put.json()["target"]["has_signing_secret"] is True
        assert put.json()["rate_limit"] == {"per_second": 1.0, "burst": 1}
        renamed_by_put = await client.put(
            f"{url}/hook", json={"name": "other", "target": {"kind": "noop"}}, headers=auth
        )
        assert set(paths(renamed_by_put)) == {"name"}

        # PATCH: omitted fields stay, null clears, name renames.
        patched = await client.patch(
            f"{url}/hook",
            json={"filter": None, "rate_limit": None, "max_concurrency": 2},
            headers=auth,
        )
        assert patched.status_code == 200, patched.text
        assert (patched.json()["filter"], patched.json()["rate_limit"]) == (None, None)
        assert (patched.json()["transform"], patched.json()["max_concurrency"]) == ('"x"', 2)
        cleared = await client.patch(
            f"{url}/hook", json={"transform": None, "max_concurrency": None}, headers=auth
        )
        assert (cleared.json()["transform"], cleared.json()["max_concurrency"]) == (None, None)
        no_target = await client.patch(f"{url}/hook", json={"target": None}, headers=auth)
        assert paths(no_target) == {"target": "cannot be null"}
        bad = await client.patch(f"{url}/hook", json={"transform": "1 +"}, headers=auth)
        assert paths(bad)["transform"].startswith("line 1, column")
        taken = await client.patch(f"{url}/hook", json={"name": "default"}, headers=auth)
        assert taken.status_code == 409, taken.text
        renamed = await client.patch(f"{url}/hook", json={"name": "hook-2"}, headers=auth)
        assert renamed.json()["name"] == "hook-2"
        assert (await client.get(f"{url}/hook", headers=auth)).status_code == 404

        assert (await client.delete(f"{url}/default", headers=auth)).status_code == 204
        last = await client.delete(f"{url}/hook-2", headers=auth)
        assert last.status_code == 409, last.text
        assert "a trigger needs at least one destination" in last.json()["error"]
        trigger = (await client.get(url.removesuffix("/destinations"), headers=auth)).json()
        assert [d["name"] for d in trigger["destinations"]] == ["hook-2"]
        assert trigger["target"] is None
        # Create, add, put, two patches, rename, delete: each its own revision.
        assert trigger["revision"] == 7
        record = await published(settings, trigger["id"], 7)
        [only] = record.destinations
        assert (only.name, only.target.ref, only.filter) == (
            "hook-2",
            "https://example.com/v2",
            None,
        )
        assert only.signing_secret is not None


def _rules() -> dict[str, Any]:
    return {"filter": "event.n > 0", "transform": '"x"', "rate_limit": {"per_second": 1}}


async def test_unknown_triggers_and_names_are_404(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    _, other = await project_with_key(settings, "other")
    async with control_plane(settings) as client:
        created = await client.post("/triggers", json=webhook_trigger("orders"), headers=auth)
        mine = f"/triggers/{created.json()['id']}/destinations"
        body = {"name": "x", "target": {"kind": "noop"}}
        for base, headers in (
            ("/triggers/00000000-0000-0000-0000-000000000000/destinations", auth),
            ("/triggers/not-a-uuid/destinations", auth),
            (mine, other),
        ):
            assert (await client.get(base, headers=headers)).status_code == 404
            assert (await client.post(base, json=body, headers=headers)).status_code == 404
            assert (await client.get(f"{base}/default", headers=headers)).status_code == 404
        for name in ("nope", "Default", "@replay"):
            named = f"{mine}/{name}"
            assert (await client.get(named, headers=auth)).status_code == 404
            assert (await client.put(named, json=body, headers=auth)).status_code == 404
            assert (await client.patch(named, json={}, headers=auth)).status_code == 404
            assert (await client.delete(named, headers=auth)).status_code == 404
        assert (await client.get(mine)).status_code == 401
        assert (await client.get(mine, headers=auth)).json()[0]["name"] == "default"


async def test_a_record_over_the_bound_is_refused_and_nothing_changes(settings: Settings) -> None:
    settings = settings.override(registry__config_record_max_bytes=10_000)
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        created = await client.post("/triggers", json=webhook_trigger("orders"), headers=auth)
        url = f"/triggers/{created.json()['id']}"
        wide = " || ".join(f"event.field_{i} == {i}" for i in range(150))
        assert 4000 > len(wide) > 3000
        answers = [
            await client.post(
                f"{url}/destinations", json=audit(name=f"d{i}", filter=wide), headers=auth
            )
            for i in range(3)
        ]
        assert [a.status_code for a in answers] == [201, 201, 413], answers[-1].text
        assert "TRIGGERLINE_CONFIG_RECORD_MAX_BYTES" in answers[-1].json()["error"]
        kept = (await client.get(url, headers=auth)).json()
        assert [d["name"] for d in kept["destinations"]] == ["default", "d0", "d1"]
        assert kept["revision"] == 3
