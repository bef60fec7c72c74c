"""Schema migrations against a real PostgreSQL: applied once each, in order, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from deploy.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations
from runtime.settings import Settings
from tests.integration.support.isolation import scratch_database

pytestmark = pytest.mark.integration

# Read from the directory itself rather than through `discover`, so that a discovery bug that
# skipped or reordered files would show up here.
SHIPPED = sorted(path.stem for path in MIGRATIONS_DIR.glob("*.sql"))


@pytest.fixture
def empty_database(base_settings: Settings) -> Iterator[str]:
    with scratch_database(base_settings.database.url.get_secret_value()) as url:
        yield url


def recorded_versions(url: str) -> list[str]:
    """schema_migrations in the order the rows were written (each file commits on its own)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT version FROM schema_migrations ORDER BY applied_at, version"
        ).fetchall()
    return [version for (version,) in rows]


def table_exists(url: str, table: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    return row is not None and row[0] is not None


def test_the_shipped_migrations_are_the_ones_this_test_expects() -> None:
    # Guards the tests below against passing vacuously on an empty directory.
    assert SHIPPED[:2] == ["0001_projects", "0002_triggers"]


def test_applying_again_changes_nothing(database_url: str) -> None:
    assert apply_migrations(database_url) == []
    assert recorded_versions(database_url) == SHIPPED


def test_a_fresh_database_gets_every_migration_in_order(empty_database: str) -> None:
    assert apply_migrations(empty_database) == SHIPPED
    assert recorded_versions(empty_database) == SHIPPED
    assert table_exists(empty_database, "triggers")
    assert table_exists(empty_database, "trigger_config_outbox")


def test_a_broken_migration_leaves_no_trace(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good_table (id int PRIMARY KEY);")
    # The first statement succeeds on its own; only the file's transaction can undo it.
    (tmp_path / "0002_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_column FROM no_such_table;"
    )

    with pytest.raises(MigrationError, match=r"^0002_broken\.sql: .*no_such_table"):
        apply_migrations(empty_database, tmp_path)

    assert recorded_versions(empty_database) == ["0001_good"]
    assert table_exists(empty_database, "good_table")
    assert not table_exists(empty_database, "half_done")


def test_a_fixed_migration_applies_on_the_next_run(empty_database: str, tmp_path: Path) -> None:
    broken = tmp_path / "0001_retried.sql"
    broken.write_text("CREATE TABLE retried (id int);\nSELECT 1/0;")
    with pytest.raises(MigrationError, match=r"^0001_retried\.sql: "):
        apply_migrations(empty_database, tmp_path)

    broken.write_text("CREATE TABLE retried (id int);")
    assert apply_migrations(empty_database, tmp_path) == ["0001_retried"]
    assert table_exists(empty_database, "retried")
