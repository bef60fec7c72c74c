"""`triggerline projects ...` and `triggerline triggers ...`: admin commands on the registry."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, cast, get_args

import orjson
import typer
from psycopg import AsyncConnection

from deploy.local_secrets import with_secret_keys
from ingest.registry.api_keys import create_api_key
from ingest.registry.store import NameConflict, NewTrigger, create_project, create_trigger
from runtime.secrets import Keyring
from runtime.settings import get_settings
from schemas.triggers import DefinitionSlug, Target, TargetKind

projects_app = typer.Typer(help="Projects own triggers and API keys.", no_args_is_help=True)
triggers_app = typer.Typer(help="Trigger instances.", no_args_is_help=True)


@projects_app.command("create")
def projects_create(name: str) -> None:
    """Create a project and print its id."""

    async def create() -> str:
        async with await _connect() as conn:
            return await create_project(conn, name)

    typer.echo(asyncio.run(create()))


@projects_app.command("create-key")
def projects_create_key(project: str) -> None:
    """Create an API key for a project and print it; it is shown only this once."""

    async def create() -> str:
        async with await _connect() as conn:
            return (await create_api_key(conn, await _project_id(conn, project))).plaintext

    typer.echo(asyncio.run(create()))


@triggers_app.command("create")
def triggers_create(
    *,
    project: Annotated[str, typer.Option(help="Project name.")],
    definition: Annotated[str, typer.Option(help="slack, webhook or cron.")],
    name: Annotated[str, typer.Option(help="Unique among the project's live triggers.")],
    target: Annotated[str, typer.Option(help="Target kind: http, kafka or noop.")] = "noop",
    target_ref: Annotated[str, typer.Option(help="URL or topic name.")] = "",
    event_type: Annotated[
        list[str] | None, typer.Option(help="Slack event type to route; repeat for more.")
    ] = None,
    secret: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE, e.g. SLACK_SIGNING_SECRET=...")
    ] = None,
) -> None:
    """Create a trigger and print it as JSON (secret values are not printed)."""
    if definition not in get_args(DefinitionSlug):
        raise typer.BadParameter(f"definition must be one of {', '.join(get_args(DefinitionSlug))}")
    if target not in get_args(TargetKind):
        raise typer.BadParameter(f"target must be one of {', '.join(get_args(TargetKind))}")
    secrets = dict(_pair(entry) for entry in secret or [])
    config: dict[str, Any] = {"event_types": event_type} if event_type else {}
    settings = with_secret_keys(get_settings())
    keyring = Keyring.from_setting(settings.secret_keys)

    async def create() -> dict[str, Any]:
        async with await _connect() as conn:
            project_id = await _project_id(conn, project)
            record = await create_trigger(
                conn,
                keyring,
                NewTrigger(
                    project_id=project_id,
                    definition=cast(DefinitionSlug, definition),
                    name=name,
                    target=Target(cast(TargetKind, target), ref=target_ref),
                    config=config,
                    secrets=secrets,
                ),
            )
        shown: dict[str, Any] = orjson.loads(orjson.dumps(record))
        shown["secrets"] = sorted(record.secrets)
        shown["webhook_url"] = f"{settings.public_base_url}/webhooks/{record.trigger_id}"
        return shown

    try:
        typer.echo(orjson.dumps(asyncio.run(create()), option=orjson.OPT_INDENT_2).decode())
    except NameConflict as conflict:
        raise typer.BadParameter(str(conflict)) from None


async def _connect() -> AsyncConnection[Any]:
    return await AsyncConnection.connect(get_settings().database_url.get_secret_value())


async def _project_id(conn: AsyncConnection[Any], name: str) -> str:
    cursor = await conn.execute("SELECT id FROM projects WHERE name = %s", (name,))
    row = await cursor.fetchone()
    if row is None:
        raise typer.BadParameter(f"no project named {name!r}; create it with `projects create`")
    return str(row[0])


def _pair(entry: str) -> tuple[str, str]:
    key, sep, value = entry.partition("=")
    if not sep or not key:
        raise typer.BadParameter("secrets look like NAME=VALUE")
    return key, value
