"""Session-scoped real Kafka and PostgreSQL for integration tests.

The local broker and cluster are started with the project's own tooling (idempotent, so a
running pair is reused). Set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL to point the suite at
existing services instead. Each test gets its own topic prefix and its own database, so tests
never see each other's records or triggers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from pydantic import SecretStr

from deploy import local_kafka, local_postgres
from deploy.migrate import apply_migrations
from deploy.topics import ensure_topics
from runtime.secrets import new_key_setting
from runtime.settings import Settings


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    settings = Settings()
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        local_kafka.start(settings.local_dir)
    if "DATABASE_URL" not in os.environ:
        local_postgres.start(settings.local_dir)
    return settings


@pytest.fixture
def database_url(base_settings: Settings) -> Iterator[str]:
    """A fresh, migrated database for one test, dropped afterwards."""
    admin_url = base_settings.database_url.get_secret_value()
    name = f"tl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    apply_migrations(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def settings(base_settings: Settings, database_url: str) -> Settings:
    """Settings for one test: its own topics (created from the catalogue) and database."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    test_settings = base_settings.model_copy(
        update={
            "topic_prefix": prefix,
            "database_url": SecretStr(database_url),
            "secret_keys": SecretStr(new_key_setting()),
        }
    )
    await ensure_topics(test_settings)
    return test_settings
