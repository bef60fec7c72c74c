"""Ids in any spelling but the canonical one, control characters in stored text, and kafka
targets naming internal topics: each is a clear 404 or 422, never a 500 or a silent miss."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from psycopg import AsyncConnection

from runtime.settings import Settings
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger

pytestmark = pytest.mark.integration


async def test_ids_are_canonical_and_other_spellings_are_404(settings: Settings) -> None:
    project_id, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        created = await client.post("/triggers", json=webhook_trigger("t"), headers=auth)
        trigger_id = created.json()["id"]
        environment = await client.post("/environments", json={"name": "e"}, headers=auth)
        environment_id = environment.json()["id"]
        async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as db:
            await db.execute(
                "INSERT INTO delivery_log (log_partition, log_offset, event_id, trigger_id,"
                " project_id, stage, outcome, at) VALUES (0, 0, 'ev-1', %s, %s, 'dispatcher',"
                " 'delivered', %s)",
                (trigger_id, project_id, datetime.now(UTC)),
            )
            await db.commit()

        upper = await client.get(f"/triggers/{trigger_id.upper()}", headers=auth)
        assert upper.status_code == 200, upper.text
        assert upper.json()["id"] == trigger_id
        deliveries = await client.get(f"/triggers/{trigger_id.upper()}/deliveries", headers=auth)
        assert [step["event_id"] for step in deliveries.json()["items"]] == ["ev-1"]
        env_upper = await client.get(f"/environments/{environment_id.upper()}", headers=auth)
        assert env_upper.json()["id"] == environment_id

        for odd in (f"urn:uuid:{trigger_id}", f"{{{trigger_id}}}", trigger_id.replace("-", "")):
            for path in (f"/triggers/{odd}", f"/triggers/{odd}/deliveries"):
                response = await client.get(path, headers=auth)
                assert response.status_code == 404, (path, response.text)
            deleted = await client.delete(f"/triggers/{odd}", headers=auth)
            assert deleted.status_code == 404, deleted.text
        for path in (f"/environments/urn:uuid:{environment_id}", "/api-keys/urn:uuid:x"):
            method = "DELETE" if path.startswith("/api-keys") else "GET"
            response = await client.request(method, path, headers=auth)
            assert response.status_code == 404, (path, response.text)


async def test_control_characters_in_stored_text_are_422(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        for target, path in (
            ({"kind": "noop", "display_name": "a\x00b"}, "target.display_name"),
            ({"kind": "noop", "display_name": "line\nbreak"}, "target.display_name"),
            ({"kind": "kafka", "ref": "orders\x00"}, "target.ref"),
        ):
            response = await client.post(
                "/triggers", json=webhook_trigger("t", target=target), headers=auth
            )
            assert response.status_code == 422, response.text
            assert path in {error["path"] for error in response.json()["errors"]}
        cron = {
            "definition": "cron",
            "name": "nightly",
            "target": {"kind": "noop"},
            "config": {"schedule": "@daily", "timezone": "Europe/Berlin\x00"},
        }
        response = await client.post("/triggers", json=cron, headers=auth)
        assert response.status_code == 422, response.text
        assert "config.timezone" in {error["path"] for error in response.json()["errors"]}

        assert (await client.get("/events/ev%001", headers=auth)).status_code == 404
        created = await client.post("/triggers", json=webhook_trigger("ok"), headers=auth)
        trigger_id = created.json()["id"]
        query = await client.get(
            f"/triggers/{trigger_id}/deliveries", params={"event_id": "a\x00"}, headers=auth
        )
        assert query.status_code == 400, query.text


async def test_kafka_targets_may_not_name_internal_topics(settings: Settings) -> None:
    settings = settings.override(registry__kafka_target_topic_pattern=r"acme\.[a-z.-]+")
    _, auth = await project_with_key(settings, "acme")
    prefix = settings.topics.prefix
    async with control_plane(settings) as client:
        for topic, rule in (
            (f"{prefix}.trigger-config", "prefix"),
            (f"{prefix}.routed-events", "prefix"),
            (f"{prefix}.raw-events", "prefix"),
            ("__consumer_offsets", "internal"),
            ("globex.orders", "TRIGGERLINE_KAFKA_TARGET_TOPIC_PATTERN"),
        ):
            response = await client.post(
                "/triggers",
                json=webhook_trigger("t", target={"kind": "kafka", "ref": topic}),
                headers=auth,
            )
            assert response.status_code == 422, (topic, response.text)
            errors = {error["path"]: error["message"] for error in response.json()["errors"]}
            assert rule in errors["target.ref"], errors

        allowed = await client.post(
            "/triggers",
            json=webhook_trigger("t", target={"kind": "kafka", "ref": "acme.orders"}),
            headers=auth,
        )
        assert allowed.status_code == 201, allowed.text
        moved = await client.patch(
            f"/triggers/{allowed.json()['id']}",
            json={"target": {"kind": "kafka", "ref": f"{prefix}.trigger-config"}},
            headers=auth,
        )
        assert moved.status_code == 422, moved.text
