"""Schema migrations against a real PostgreSQL: applied once each, in order, all or nothing; and
what a migration does to rows stored before it."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from deploy.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations
from ingest.registry.config_records import config_record
from ingest.registry.store import find_trigger
from runtime.settings import Settings
from schemas.triggers import DEFAULT_DESTINATION, TARGET_SIGNING_ENTRY, Destination, Target
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


async def test_each_trigger_keeps_its_target_and_secret_as_its_destination_default(
    empty_database: str, tmp_path: Path
) -> None:
    """Triggers stored before 0040 (a target and a target_secret column) become one destination
    "default" holding both, in the shape the store reads, and publish as they delivered."""
    before = [path for path in MIGRATIONS_DIR.glob("*.sql") if path.stem <= "0030_replays"]
    for path in before:
        shutil.copy(path, tmp_path / path.name)
    assert apply_migrations(empty_database, tmp_path) == sorted(p.stem for p in before)
    signed = Target("http", "https://example.com/hook", timeout_s=5.0, max_attempts=3)
    project_id, signed_id, plain_id = (str(uuid.uuid4()) for _ in range(3))
    with psycopg.connect(empty_database) as conn:
        conn.execute("INSERT INTO projects (id, name) VALUES (%s, 'acme')", (project_id,))
        for trigger_id, name, target, secret in (
            (signed_id, "signed", signed, "k1:gAAAA-ciphertext"),
            (plain_id, "plain", Target("kafka", "acme.orders"), None),
        ):
            conn.execute(
                "INSERT INTO triggers (id, project_id, definition, name, target, target_secret)"
                " VALUES (%s, %s, 'webhook', %s, %s, %s)",
                (trigger_id, project_id, name, Jsonb(msgspec.to_builtins(target)), secret),
            )

    assert apply_migrations(empty_database) == [v for v in SHIPPED if v > "0030_replays"]

    expected = {
        signed_id: Destination(DEFAULT_DESTINATION, signed, signing_secret="k1:gAAAA-ciphertext"),
        plain_id: Destination(DEFAULT_DESTINATION, Target("kafka", "acme.orders")),
    }
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute("SELECT id::text, destinations FROM triggers").fetchall()
        assert dict(rows) == {
            trigger_id: [msgspec.to_builtins(destination)]
            for trigger_id, destination in expected.items()
        }
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'triggers'"
        ).fetchall()
        assert {"target", "target_secret"}.isdisjoint(name for (name,) in columns)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE triggers SET destinations = '[]'::jsonb")

    async with await AsyncConnection.connect(empty_database) as conn:
        for trigger_id, destination in expected.items():
            record = await config_record(conn, await find_trigger(conn, project_id, trigger_id))
            assert record.destinations == (destination,)
            assert TARGET_SIGNING_ENTRY not in record.secrets
