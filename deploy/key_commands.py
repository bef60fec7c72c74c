"""`triggerline api-keys ...` (a project's API keys) and `triggerline keys ...` (the secret-
encryption keys of TRIGGERLINE_SECRET_KEYS)."""

from __future__ import annotations

import asyncio

import typer

from deploy.local_secrets import with_secret_keys
from deploy.registry_commands import connect, project_id_of
from ingest.registry.api_keys import list_api_keys, revoke_api_key
from ingest.registry.rotation import rotate_secrets
from runtime.ids import canonical_id
from runtime.secrets import Keyring
from runtime.settings import get_settings

api_keys_app = typer.Typer(
    help="A project's API keys (create one with `projects create-key`).", no_args_is_help=True
)
keys_app = typer.Typer(
    help="The secret-encryption keys (TRIGGERLINE_SECRET_KEYS).", no_args_is_help=True
)


@api_keys_app.command("list")
def api_keys_list(project: str) -> None:
    """Print a project's keys, one per line: id, first characters, created, revoked."""

    async def listed() -> list[str]:
        async with await connect() as conn:
            rows = await list_api_keys(conn, await project_id_of(conn, project))
        return [
            f"{row.key_id}  {row.key_prefix}...  created {row.created_at.isoformat()}  "
            + (f"revoked {row.revoked_at.isoformat()}" if row.revoked_at else "live")
            for row in rows
        ]

    for line in asyncio.run(listed()):
        typer.echo(line)


@api_keys_app.command("revoke")
def api_keys_revoke(project: str, key_id: str) -> None:
    """Revoke a key; requests carrying it are refused (401) from now on."""
    canonical = canonical_id(key_id)
    if canonical is None:
        raise typer.BadParameter(f"{key_id!r} is not a key id; see `api-keys list`")

    async def revoke() -> bool:
        async with await connect() as conn:
            return await revoke_api_key(conn, await project_id_of(conn, project), canonical)

    if not asyncio.run(revoke()):
        raise typer.BadParameter(f"project {project!r} has no live key {canonical}")
    typer.echo(f"revoked {canonical}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret under the first key of TRIGGERLINE_SECRET_KEYS and
    republish the affected triggers; afterwards the other keys can be removed."""
    settings = with_secret_keys(get_settings())
    keyring = Keyring.from_setting(settings.secret_keys)

    async def rotate() -> str:
        async with await connect() as conn:
            await conn.set_autocommit(True)
            done = await rotate_secrets(
                conn, keyring, record_bound=settings.registry.config_record_max_bytes
            )
        return (
            f"re-encrypted under {keyring.active_key_id!r}: {done.environments} environments,"
            f" {done.triggers} triggers"
        )

    typer.echo(asyncio.run(rotate()))
