"""Re-encrypts every stored secret under the keyring's active (first) key, so that older keys
can be retired.

Trigger secrets, destinations' signing secrets and environment secrets, of live and deleted
rows, are rewritten in transactions of at most `batch_size` rows each, so a large registry is
never locked at once and an interrupted rotation resumes where it stopped. Every live trigger
whose published record changes is republished through the outbox; a trigger-config record
under an old key stays on the topic only until compaction drops it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ingest.registry.environments import find_environment, save_environment
from ingest.registry.store import find_trigger, save_trigger
from runtime.secrets import Keyring
from schemas.triggers import Destination

BATCH_SIZE = 100


@dataclass(frozen=True, slots=True)
class Rotation:
    environments: int
    triggers: int


async def rotate_secrets(
    conn: AsyncConnection[Any], keyring: Keyring, *, record_bound: int, batch_size: int = BATCH_SIZE
) -> Rotation:
    """Rotate environments first: each republishes its triggers, whose own secrets are then
    rotated (and republished once more), so every trigger's newest record is under the new key."""
    environments = await _rotate_environments(conn, keyring, record_bound, batch_size)
    triggers = await _rotate_triggers(conn, keyring, record_bound, batch_size)
    return Rotation(environments=environments, triggers=triggers)


def _stale(keyring: Keyring, stored: str | None) -> bool:
    return stored is not None and not stored.startswith(f"{keyring.active_key_id}:")


def _rotated(keyring: Keyring, secrets: dict[str, str]) -> dict[str, str]:
    return {
        name: keyring.encrypt(keyring.decrypt(value)) if _stale(keyring, value) else value
        for name, value in secrets.items()
    }


async def _rotate_environments(
    conn: AsyncConnection[Any], keyring: Keyring, record_bound: int, batch_size: int
) -> int:
    rotated, after = 0, "00000000-0000-0000-0000-000000000000"
    while True:
        async with conn.transaction():
            cursor = await conn.execute(
                "SELECT id, project_id, secrets, deleted_at IS NULL FROM environments"
                " WHERE id > %s ORDER BY id LIMIT %s FOR UPDATE",
                (after, batch_size),
            )
            rows = await cursor.fetchall()
            for environment_id, project_id, secrets, live in rows:
                if not any(_stale(keyring, value) for value in secrets.values()):
                    continue
                rotated += 1
                if live:
                    row = await find_environment(conn, str(project_id), str(environment_id))
                    await save_environment(
                        conn,
                        replace(row, secrets=_rotated(keyring, secrets)),
                        record_bound=record_bound,
                    )
                else:
                    await conn.execute(
                        "UPDATE environments SET secrets = %s WHERE id = %s",
                        (Jsonb(_rotated(keyring, secrets)), environment_id),
                    )
        if len(rows) < batch_size:
            return rotated
        after = str(rows[-1][0])


async def _rotate_triggers(
    conn: AsyncConnection[Any], keyring: Keyring, record_bound: int, batch_size: int
) -> int:
    rotated, after = 0, "00000000-0000-0000-0000-000000000000"
    while True:
        async with conn.transaction():
            cursor = await conn.execute(
                "SELECT id, project_id, secrets, destinations, deleted_at IS NULL FROM triggers"
                " WHERE id > %s ORDER BY id LIMIT %s FOR UPDATE",
                (after, batch_size),
            )
            rows = await cursor.fetchall()
            for trigger_id, project_id, secrets, stored, live in rows:
                destinations = msgspec.convert(stored, tuple[Destination, ...])
                stale = [*secrets.values(), *(d.signing_secret for d in destinations)]
                if not any(_stale(keyring, value) for value in stale):
                    continue
                rotated += 1
                new_secrets = _rotated(keyring, secrets)
                new_destinations = tuple(_signed_anew(keyring, d) for d in destinations)
                if live:
                    row = await find_trigger(conn, str(project_id), str(trigger_id), lock=True)
                    await save_trigger(
                        conn,
                        replace(row, secrets=new_secrets, destinations=new_destinations),
                        record_bound=record_bound,
                    )
                else:
                    await conn.execute(
                        "UPDATE triggers SET secrets = %s, destinations = %s WHERE id = %s",
                        (
                            Jsonb(new_secrets),
                            Jsonb(msgspec.to_builtins(new_destinations)),
                            trigger_id,
                        ),
                    )
        if len(rows) < batch_size:
            return rotated
        after = str(rows[-1][0])


def _signed_anew(keyring: Keyring, destination: Destination) -> Destination:
    """The destination with its signing secret under the active key."""
    secret = destination.signing_secret
    if secret is None or not _stale(keyring, secret):
        return destination
    return msgspec.structs.replace(
        destination, signing_secret=keyring.encrypt(keyring.decrypt(secret))
    )
