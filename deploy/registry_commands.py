"""`triggerline projects ...` and `triggerline triggers ...`: admin commands on the registry."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, cast, get_args

import msgspec
import orjson
import typer
from psycopg import AsyncConnection

from deploy.local_secrets import with_secret_keys
from ingest.registry.api_keys import create_api_key
from ingest.registry.config_records import RecordTooLarge
from ingest.registry.store import NameConflict, NewTrigger, create_project, create_trigger
from ingest.registry.validation import (
    FieldError,
    Invalid,
    missing_secret_errors,
    secret_count_errors,
    secret_errors,
    target_errors,
    validated_config,
)
from runtime.kafka_targets import KafkaTargetPolicy
from runtime.secrets import Keyring
from runtime.settings import get_settings
from schemas.definitions import DEFINITIONS
from schemas.triggers import DefinitionSlug, Target, TargetKind

projects_app = typer.Typer(help="Projects own triggers and API keys.", no_args_is_help=True)
triggers_app = typer.Typer(help="Trigger instances.", no_args_is_help=True)


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
    config_json: Annotated[
        str, typer.Option("--config", help='Config as JSON, e.g. \'{"schedule": "@hourly"}\'.')
    ] = "{}",
    target_signing_secret: Annotated[
        str | None, typer.Option(help="http targets: whsec_<base64> that signs deliveries.")
    ] = None,
) -> None:
    """Create a trigger and print it as JSON (secret values are not printed).

    The config is checked exactly as the API checks it.
    """
    if definition not in get_args(DefinitionSlug):
        raise typer.BadParameter(f"definition must be one of {', '.join(get_args(DefinitionSlug))}")
    if target not in get_args(TargetKind):
        raise typer.BadParameter(f"target must be one of {', '.join(get_args(TargetKind))}")
    secrets = dict(_pair(entry) for entry in secret or [])
    try:
        config: dict[str, Any] = orjson.loads(config_json)
    except orjson.JSONDecodeError:
        raise typer.BadParameter("--config is not valid JSON") from None
    if event_type:
        config["event_types"] = event_type
    checked = cast(DefinitionSlug, definition)
    config = _checked_config(
        checked,
        config,
        Target(cast(TargetKind, target), ref=target_ref),
        secrets,
        target_signing_secret,
    )
    settings = with_secret_keys(get_settings())
    keyring = Keyring.from_setting(settings.secret_keys)

    async def create() -> dict[str, Any]:
        async with await connect() as conn:
            project_id = await project_id_of(conn, project)
            record = await create_trigger(
                conn,
                keyring,
                NewTrigger(
                    project_id=project_id,
                    definition=checked,
                    name=name,
                    target=Target(cast(TargetKind, target), ref=target_ref),
                    config=config,
                    secrets=secrets,
                    target_secret=target_signing_secret,
                ),
                record_bound=settings.registry.config_record_max_bytes,
            )
        shown: dict[str, Any] = msgspec.to_builtins(record)
        shown["secrets"] = sorted(record.secrets)
        if DEFINITIONS[checked].kind == "webhook":
            shown["webhook_url"] = (
                f"{settings.registry.public_base_url}/webhooks/{record.trigger_id}"
            )
        return shown

    try:
        typer.echo(orjson.dumps(asyncio.run(create()), option=orjson.OPT_INDENT_2).decode())
    except (NameConflict, RecordTooLarge) as refused:
        raise typer.BadParameter(str(refused)) from None


def _checked_config(
    slug: DefinitionSlug,
    config: dict[str, Any],
    target: Target,
    secrets: dict[str, str],
    target_signing_secret: str | None,
) -> dict[str, Any]:
    definition = DEFINITIONS[slug]
    settings = get_settings()
    errors: list[FieldError] = []
    try:
        config = validated_config(definition, config)
    except Invalid as invalid:
        errors += invalid.errors
    errors += target_errors(
        target, target_signing_secret is not None, KafkaTargetPolicy.from_settings(settings)
    )
    errors += secret_errors("secret", secrets)
    errors += secret_count_errors("secret", len(secrets), settings.registry.max_secrets)
    errors += missing_secret_errors(definition, secrets)
    if errors:
        raise typer.BadParameter("; ".join(f"{e.path}: {e.message}" for e in errors))
    return config


async def connect() -> AsyncConnection[Any]:
    return await AsyncConnection.connect(get_settings().database.url.get_secret_value())


async def project_id_of(conn: AsyncConnection[Any], name: str) -> str:
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
