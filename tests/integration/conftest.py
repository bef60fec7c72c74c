"""Session-scoped real Kafka and PostgreSQL for integration tests.

The local broker and cluster are started with the project's own tooling (idempotent, so a
running pair is reused). Set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL to point the suite at
existing services instead. Each test gets its own topic prefix and its own database, so tests
never see each other's records or triggers.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from deploy import local_kafka, local_postgres
from deploy.migrate import apply_migrations
from runtime.settings import Settings
from tests.integration.support.isolation import drop_topics, isolated_settings, scratch_database

# Services found listening that this checkout did not start (another checkout's), said once at
# the end of the run.
FOUND_LISTENING: list[str] = []


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    settings = Settings()
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        kafka = local_kafka.start(settings.local_dir)
        if kafka.found_listening:
            FOUND_LISTENING.append(f"Kafka at {kafka.bootstrap_servers}, {kafka.found_listening}")
    if "DATABASE_URL" not in os.environ:
        postgres = local_postgres.start(settings.local_dir)
        if postgres.found_listening:
            FOUND_LISTENING.append(f"PostgreSQL, {postgres.found_listening}")
    return settings


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for found in FOUND_LISTENING:
        terminalreporter.write_line(f"used the {found}, already running and not started here")


@pytest.fixture
def database_url(base_settings: Settings) -> Iterator[str]:
    """A fresh, migrated database for one test, dropped afterwards."""
    with scratch_database(base_settings.database.url.get_secret_value()) as url:
        apply_migrations(url)
        yield url


@pytest.fixture
async def settings(base_settings: Settings, database_url: str) -> AsyncIterator[Settings]:
    """Settings for one test: its own topics (created from the catalogue) and database."""
    isolated = await isolated_settings(base_settings, database_url)
    yield isolated
    await drop_topics(isolated)
