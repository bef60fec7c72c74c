"""`triggerline projects ...` and `triggerline triggers ...`: admin commands on the registry.

The trigger commands build the same typed input the API takes and call the same control-plane
service, so the CLI refuses exactly what the API refuses, with the same messages and field
paths; `deploy.cli.main` prints a refusal and exits non-zero.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
import orjson
import typer
from psycopg import AsyncConnection

from deploy.local_secrets import with_secret_keys
from ingest.registry.api_keys import create_api_key
from ingest.registry.config_records import config_record
from ingest.registry.destinations import shown as shown_destination
from ingest.registry.inputs import TriggerCreate, TriggerUpdate, parsed
from ingest.registry.service import ControlPlane, webhook_url
from ingest.registry.store import TriggerRow, create_project
from kinds import KINDS
from runtime.secrets import Keyring
from runtime.settings import get_settings
from schemas.triggers import TriggerStatus

projects_app = typer.Typer(help="Projects own triggers and API keys.", no_args_is_help=True)
triggers_app = typer.Typer(help="Trigger instances.", no_args_is_help=True)

ProjectOption = Annotated[str, typer.Option("--project", help="Project name.")]
TriggerId = Annotated[str, typer.Argument(help="The trigger's id.")]
SecretOption = Annotated[
    list[str] | None, typer.Option("--secret", help="NAME=VALUE, e.g. SLACK_SIGNING_SECRET=...")
]
ConfigOption = Annotated[
    str | None,
    typer.Option("--config", help='Config as JSON, e.g. \'{"schedule": "@hourly"}\'.'),
]
SigningSecretOption = Annotated[
    str | None, typer.Option(help="http targets: whsec_<base64> that signs deliveries.")
]
EnvironmentOption = Annotated[
    str | None, typer.Option("--environment", help="Id of an environment whose secrets to use.")
]


@projects_app.command("create")
def projects_create(name: str) -> None:
    """Create a project and print its id."""

    async def create() -> str:
        async with await connect() as conn:
            return await create_project(conn, name)

    typer.echo(asyncio.run(create()))


@projects_app.command("create-key")
def projects_create_key(project: str) -> None:
    """Create an API key for a project and print it; it is shown only this once."""

    async def create() -> str:
        async with await connect() as conn:
            return (await create_api_key(conn, await project_id_of(conn, project))).plaintext

    typer.echo(asyncio.run(create()))


@triggers_app.command("create")
def triggers_create(
    *,
    project: ProjectOption,
    definition: Annotated[str, typer.Option(help="A trigger kind: " + ", ".join(KINDS) + ".")],
    name: Annotated[str, typer.Option(help="Unique among the project's live triggers.")],
    target: Annotated[str, typer.Option(help="Target kind: http, kafka or noop.")] = "noop",
    target_ref: Annotated[str, typer.Option(help="URL or topic name.")] = "",
    target_signing_secret: SigningSecretOption = None,
    event_type: Annotated[
        list[str] | None, typer.Option(help="Slack event type to route; repeat for more.")
    ] = None,
    secret: SecretOption = None,
    config_json: ConfigOption = None,
    environment: EnvironmentOption = None,
) -> None:
    """Create a trigger with one destination, "default", and print its config record as JSON
    (secret values are not printed); `triggerline destinations` adds more."""
    config = _json_option(config_json) if config_json is not None else {}
    if event_type and isinstance(config, dict):
        config["event_types"] = event_type
    raw: dict[str, Any] = {
        "definition": definition,
        "name": name,
        "target": _target(target, target_ref, target_signing_secret),
        "config": config,
        "secrets": dict(_pair(entry) for entry in secret or []),
    }
    if environment is not None:
        raw["environment_id"] = environment
    given = parsed(TriggerCreate, raw)
    _run_on_trigger(
        project, lambda plane, conn, project_id: plane.create_trigger(conn, project_id, given)
    )


@triggers_app.command("update")
def triggers_update(
    *,
    project: ProjectOption,
    trigger_id: TriggerId,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help='Replace the target of the destination "default" (added if absent): http, '
            "kafka or noop."
        ),
    ] = None,
    target_ref: Annotated[str, typer.Option(help="With --target: URL or topic name.")] = "",
    target_signing_secret: SigningSecretOption = None,
    config_json: ConfigOption = None,
    secret: SecretOption = None,
    remove_secret: Annotated[
        list[str] | None, typer.Option(help="Name of a secret to remove; repeat for more.")
    ] = None,
    environment: EnvironmentOption = None,
    detach_environment: Annotated[
        bool, typer.Option(help="Stop using the trigger's environment.")
    ] = False,
) -> None:
    """Change the options given, leave the rest, and print the trigger's config record."""
    raw: dict[str, Any] = {}
    if name is not None:
        raw["name"] = name
    if target is not None:
        raw["target"] = _target(target, target_ref, target_signing_secret)
    elif target_ref or target_signing_secret is not None:
        raise typer.BadParameter("--target-ref and --target-signing-secret need --target")
    if config_json is not None:
        raw["config"] = _json_option(config_json)
    secrets: dict[str, str | None] = dict(_pair(entry) for entry in secret or [])
    secrets.update(dict.fromkeys(remove_secret or []))
    if secrets:
        raw["secrets"] = secrets
    if environment is not None and detach_environment:
        raise typer.BadParameter("give --environment or --detach-environment, not both")
    if environment is not None or detach_environment:
        raw["environment_id"] = environment
    given = parsed(TriggerUpdate, raw)
    _run_on_trigger(
        project,
        lambda plane, conn, project_id: plane.update_trigger(conn, project_id, trigger_id, given),
    )


@triggers_app.command("pause")
def triggers_pause(*, project: ProjectOption, trigger_id: TriggerId) -> None:
    """Pause a trigger: its webhooks are answered but not forwarded until it is resumed."""
    _set_status(project, trigger_id, "paused")


@triggers_app.command("resume")
def triggers_resume(*, project: ProjectOption, trigger_id: TriggerId) -> None:
    """Resume a paused trigger."""
    _set_status(project, trigger_id, "active")


@triggers_app.command("delete")
def triggers_delete(*, project: ProjectOption, trigger_id: TriggerId) -> None:
    """Delete a trigger; the data plane forgets it through its tombstone."""
    plane = control_plane()

    async def delete() -> None:
        async with await connect() as conn:
            await plane.delete_trigger(conn, await project_id_of(conn, project), trigger_id)

    asyncio.run(delete())
    typer.echo(f"deleted {trigger_id}")


async def connect() -> AsyncConnection[Any]:
    return await AsyncConnection.connect(get_settings().database.url.get_secret_value())


async def project_id_of(conn: AsyncConnection[Any], name: str) -> str:
    cursor = await conn.execute("SELECT id FROM projects WHERE name = %s", (name,))
    row = await cursor.fetchone()
    if row is None:
        raise typer.BadParameter(f"no project named {name!r}; create it with `projects create`")
    return str(row[0])


def _set_status(project: str, trigger_id: str, status: TriggerStatus) -> None:
    _run_on_trigger(
        project,
        lambda plane, conn, project_id: plane.set_trigger_status(
            conn, project_id, trigger_id, status
        ),
    )


TriggerChange = Callable[[ControlPlane, AsyncConnection[Any], str], Awaitable[TriggerRow]]


def _run_on_trigger(project: str, change: TriggerChange) -> None:
    """Make one change through the control-plane service and print the trigger's record."""
    plane = control_plane()
    public_base_url = get_settings().registry.public_base_url

    async def run() -> dict[str, Any]:
        async with await connect() as conn:
            row = await change(plane, conn, await project_id_of(conn, project))
            record = await config_record(conn, row)
        shown: dict[str, Any] = msgspec.to_builtins(record)
        # Names of secrets, never their values, not even encrypted.
        shown["secrets"] = sorted(record.secrets)
        shown["destinations"] = [shown_destination(d) for d in record.destinations]
        # Schema v1's single target, always null in a record the registry builds.
        shown.pop("target", None)
        url = webhook_url(row, public_base_url)
        if url is not None:
            shown["webhook_url"] = url
        return shown

    typer.echo(orjson.dumps(asyncio.run(run()), option=orjson.OPT_INDENT_2).decode())


def control_plane() -> ControlPlane:
    settings = with_secret_keys(get_settings())
    return ControlPlane.from_settings(settings, Keyring.from_setting(settings.secret_keys))


def _target(kind: str, ref: str, signing_secret: str | None) -> dict[str, Any]:
    target: dict[str, Any] = {"kind": kind, "ref": ref}
    if signing_secret is not None:
        target["signing_secret"] = signing_secret
    return target


def _json_option(value: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise typer.BadParameter("--config is not valid JSON") from None


def _pair(entry: str) -> tuple[str, str]:
    key, sep, value = entry.partition("=")
    if not sep or not key:
        raise typer.BadParameter("secrets look like NAME=VALUE")
    return key, value
