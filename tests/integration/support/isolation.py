"""Per-test databases and topic prefixes on the shared Kafka broker and PostgreSQL cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from pydantic import SecretStr

from deploy.topics import ensure_topics
from runtime.kafka import admin_client
from runtime.secrets import new_key_setting
from runtime.settings import Settings


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """An empty database of its own, dropped afterwards even if connections are still open."""
    name = f"tl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def fresh_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


async def isolated_settings(base: Settings, database_url: str, **overrides: object) -> Settings:
    """`base` with its own topic prefix (topics created from the catalogue), database and keys."""
    settings = base.override(
        topics__prefix=fresh_prefix(),
        database__url=SecretStr(database_url),
        secret_keys=SecretStr(new_key_setting()),
        **overrides,
    )
    await ensure_topics(settings)
    return settings


async def drop_topics(settings: Settings) -> None:
    """Delete every topic under the test's prefix (the catalogue's and faust's own).

    A suite creates hundreds of topics; removing each test's keeps the single local broker small,
    so later tests do not run against a broker slowed by thousands of idle partitions.
    """
    admin = admin_client(settings)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(f"{settings.topics.prefix}.")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
