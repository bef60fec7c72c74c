"""The API and the CLI are two doors to one control-plane service: each bad input is refused by
both, with the same message and the same field paths and messages, and nothing is stored; an
update that clears an optional field works through both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from runtime.settings import RegistrySettings, Settings
from tests.integration.support.cli import refused_alike, triggerline
from tests.integration.support.control_plane import control_plane, project_with_key

pytestmark = pytest.mark.integration

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MAX_SECRETS = RegistrySettings.model_fields["max_secrets"].default


@dataclass(frozen=True, slots=True)
class BadTrigger:
    """One trigger the registry must refuse, as an API body and as `triggers create` options."""

    refused_path: str
    body: dict[str, Any]

    def cli_args(self) -> list[str]:
        body = self.body
        target = body["target"]
        args = [
            "triggers",
            "create",
            "--project",
            "acme",
            "--definition",
            body["definition"],
            "--name",
            body["name"],
            "--target",
            target["kind"],
            "--target-ref",
            target.get("ref", ""),
            "--config",
            orjson.dumps(body.get("config", {})).decode(),
        ]
        if "signing_secret" in target:
            args += ["--target-signing-secret", target["signing_secret"]]
        for name, value in body.get("secrets", {}).items():
            args += ["--secret", f"{name}={value}"]
        return args


def webhook(**overrides: Any) -> dict[str, Any]:
    return {
        "definition": "webhook",
        "name": "orders",
        "target": {"kind": "http", "ref": "https://example.com/hook", "signing_secret": WHSEC},
        "secrets": {"WEBHOOK_SECRET": WHSEC},
        **overrides,
    }


def slack(**overrides: Any) -> dict[str, Any]:
    return {
        "definition": "slack",
        "name": "support",
        "target": {"kind": "noop"},
        "config": {"event_types": ["message"]},
        "secrets": {"SLACK_SIGNING_SECRET": "slack-signing"},
        **overrides,
    }


BAD_TRIGGERS = [
    BadTrigger("secrets.WEBHOOK_SECRET", webhook(secrets={"WEBHOOK_SECRET": "not-a-whsec"})),
    BadTrigger(
        "target.ref",
        webhook(target={"kind": "http", "ref": "ftp://example.com", "signing_secret": WHSEC}),
    ),
    BadTrigger(
        "target.signing_secret",
        webhook(
            target={"kind": "http", "ref": "https://example.com", "signing_secret": "whsec_!!"}
        ),
    ),
    BadTrigger("config.event_types[0]", slack(config={"event_types": ["app_mentions"]})),
    BadTrigger(
        "config.filter", slack(config={"event_types": ["message"], "filter": "event.text ==\n"})
    ),
    BadTrigger(
        "config.schedule",
        {
            "definition": "cron",
            "name": "nightly",
            "target": {"kind": "noop"},
            "config": {"schedule": "@daily\x00"},
        },
    ),
    BadTrigger("definition", slack(definition="jira")),
    BadTrigger(
        "secrets.STRIPE_WEBHOOK_SECRET",
        slack(definition="stripe", config={}, secrets={"STRIPE_WEBHOOK_SECRET": "sk_live_x"}),
    ),
    BadTrigger("secrets.GITHUB_WEBHOOK_SECRET", slack(definition="github", config={}, secrets={})),
    BadTrigger(
        "config.event_types", slack(definition="github", config={"event_types": ["push", "push"]})
    ),
    BadTrigger("name", slack(name="x" * 201)),
    BadTrigger("name", slack(name="bell\x07")),
    BadTrigger(
        "secrets",
        slack(
            secrets={f"S{index}": "v" for index in range(MAX_SECRETS)}
            | {"SLACK_SIGNING_SECRET": "s"}
        ),
    ),
]


@pytest.mark.parametrize("bad", BAD_TRIGGERS, ids=lambda bad: bad.refused_path)
async def test_a_bad_trigger_is_refused_alike_by_the_api_and_the_cli(
    settings: Settings, bad: BadTrigger
) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        api = await client.post("/triggers", json=bad.body, headers=auth)
        assert api.status_code == 422, api.text
        assert bad.refused_path in {error["path"] for error in api.json()["errors"]}
        refused_alike(api, await triggerline(settings, *bad.cli_args()))
        assert (await client.get("/triggers", headers=auth)).json()["items"] == []


async def test_a_taken_name_is_refused_alike(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    taken = BadTrigger("name", slack())
    async with control_plane(settings) as client:
        assert (await client.post("/triggers", json=taken.body, headers=auth)).status_code == 201
        api = await client.post("/triggers", json=taken.body, headers=auth)
        assert api.status_code == 409, api.text
        refused_alike(api, await triggerline(settings, *taken.cli_args()))


async def test_clearing_optional_fields_works_and_is_refused_alike(settings: Settings) -> None:
    """Detaching the environment and removing a secret, by null through the API and by option
    through the CLI; detaching the environment that holds a needed secret is refused by both."""
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        environment = (
            await client.post(
                "/environments",
                json={"name": "prod", "secrets": {"SLACK_SIGNING_SECRET": "from-env"}},
                headers=auth,
            )
        ).json()
        shared = {"environment_id": environment["id"], "secrets": {"EXTRA": "x"}}
        ids = []
        for name in ("by-api", "by-cli"):
            created = await client.post("/triggers", json=slack(name=name, **shared), headers=auth)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        by_api, by_cli = ids

        api = await client.patch(f"/triggers/{by_api}", json={"environment_id": None}, headers=auth)
        assert api.status_code == 422, api.text
        cli = await triggerline(
            settings, "triggers", "update", "--project", "acme", by_cli, "--detach-environment"
        )
        refused_alike(api, cli)

        cleared = await client.patch(
            f"/triggers/{by_api}",
            json={
                "environment_id": None,
                "secrets": {"EXTRA": None, "SLACK_SIGNING_SECRET": "own"},
            },
            headers=auth,
        )
        assert cleared.status_code == 200, cleared.text
        cli = await triggerline(
            settings,
            "triggers",
            "update",
            "--project",
            "acme",
            by_cli,
            "--detach-environment",
            "--remove-secret",
            "EXTRA",
            "--secret",
            "SLACK_SIGNING_SECRET=own",
        )
        assert cli.code == 0, cli.stderr
        assert orjson.loads(cli.stdout)["secrets"] == ["SLACK_SIGNING_SECRET"]

        for trigger_id in ids:
            trigger = (await client.get(f"/triggers/{trigger_id}", headers=auth)).json()
            assert trigger["environment_id"] is None
            assert trigger["secret_names"] == ["SLACK_SIGNING_SECRET"]
            assert trigger["revision"] == 2


async def test_pause_resume_and_delete_through_the_cli(settings: Settings) -> None:
    _, auth = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        created = await client.post("/triggers", json=slack(), headers=auth)
        assert created.status_code == 201, created.text
        url = f"/triggers/{created.json()['id']}"

        for command, status in (("pause", "paused"), ("resume", "active")):
            cli = await triggerline(
                settings, "triggers", command, "--project", "acme", created.json()["id"]
            )
            assert cli.code == 0, cli.stderr
            assert orjson.loads(cli.stdout)["status"] == status
            assert (await client.get(url, headers=auth)).json()["status"] == status

        args = ("triggers", "delete", "--project", "acme", created.json()["id"])
        assert (await triggerline(settings, *args)).code == 0
        gone = await client.get(url, headers=auth)
        assert gone.status_code == 404
        refused_alike(gone, await triggerline(settings, *args))
