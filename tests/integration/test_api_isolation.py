"""Another project's triggers and environments answer 404 and never show up in lists."""

from __future__ import annotations

import pytest

from runtime.settings import Settings
from tests.integration.support.control_plane import (
    WHSEC,
    control_plane,
    project_with_key,
    webhook_trigger,
)

pytestmark = pytest.mark.integration


async def test_projects_cannot_see_or_touch_each_others_resources(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    _, globex = await project_with_key(settings, "globex")
    async with control_plane(settings) as client:
        environment = (
            await client.post(
                "/environments",
                json={"name": "prod", "secrets": {"WEBHOOK_SECRET": WHSEC}},
                headers=acme,
            )
        ).json()
        trigger = (
            await client.post(
                "/triggers",
                json=webhook_trigger("orders", environment_id=environment["id"]),
                headers=acme,
            )
        ).json()
        url, env_url = f"/triggers/{trigger['id']}", f"/environments/{environment['id']}"

        for method, path in (
            ("GET", url),
            ("PATCH", url),
            ("DELETE", url),
            ("POST", f"{url}/pause"),
            ("POST", f"{url}/resume"),
            ("GET", env_url),
            ("PATCH", env_url),
            ("DELETE", env_url),
        ):
            body: dict[str, str] | None = {} if method == "PATCH" else None
            response = await client.request(method, path, json=body, headers=globex)
            assert response.status_code == 404, (method, path, response.text)
            assert trigger["id"] not in response.text
        assert (await client.get("/triggers", headers=globex)).json()["items"] == []
        assert (await client.get("/environments", headers=globex)).json() == []

        # Referring to another project's environment is refused like a missing one.
        borrowed = await client.post(
            "/triggers",
            json=webhook_trigger("orders", environment_id=environment["id"]),
            headers=globex,
        )
        assert borrowed.status_code == 422
        assert {e["path"] for e in borrowed.json()["errors"]} >= {"environment_id"}

        # Names are per project: globex may use acme's trigger name.
        same_name = await client.post(
            "/triggers",
            json=webhook_trigger("orders"),
            headers=globex,
        )
        assert same_name.status_code == 201

        untouched = await client.get(url, headers=acme)
        assert untouched.json() == trigger
