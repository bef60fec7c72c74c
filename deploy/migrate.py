"""Schema migrations: plain SQL files in deploy/migrations, applied once each, in filename order.

A file is named `NNNN_name.sql` and holds any number of statements but no transaction control:
each file runs in a transaction of its own, together with the row in `schema_migrations` that
records it, so a failed migration leaves no trace and is retried on the next run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_FILE_NAME = re.compile(r"^(?P<number>\d{4})_[a-z0-9_]+\.sql$")
# Every migrator of a database takes this lock, so two of them never apply the same file at once.
# Any fixed bigint would do; this one spells "tl-migr".
_LOCK_KEY = 0x746C_2D6D_6967_72

_CREATE_TRACKING_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz DEFAULT now()
)
"""

_log = logging.getLogger(__name__)


class MigrationError(RuntimeError):
    """The migrations could not be read or applied; the message names the file and the cause."""


@dataclass(frozen=True)
class Migration:
    # The file name without `.sql`, e.g. "0001_projects"; recorded in schema_migrations.
    version: str
    path: Path


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in `directory`, in the order they apply."""
    migrations: list[Migration] = []
    numbers: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_lower_snake_name.sql")
        # Two files with one number would apply in an order that depends on their names alone.
        clash = numbers.setdefault(match["number"], path.name)
        if clash != path.name:
            raise MigrationError(f"{path.name} and {clash} share the number {match['number']}")
        migrations.append(Migration(version=path.stem, path=path))
    return migrations


def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations that the database lacks; return their versions, in order."""
    migrations = discover(directory)
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
            with conn.transaction():
                _lock(conn)
                conn.execute(_CREATE_TRACKING_TABLE)
            return [m.version for m in migrations if _apply(conn, m)]
    except psycopg.OperationalError as error:
        raise MigrationError(f"cannot reach the database: {error}") from error


def _apply(conn: psycopg.Connection[TupleRow], migration: Migration) -> bool:
    with conn.transaction():
        _lock(conn)
        applied = conn.execute(
            "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
        ).fetchone()
        if applied is not None:
            return False
        _log.info("applying migration %s", migration.version)
        try:
            # Without parameters psycopg sends the text as one simple query, so a file may hold
            # several statements.
            conn.execute(migration.path.read_bytes())
        except psycopg.Error as error:
            raise MigrationError(f"{migration.path.name}: {error}") from error
        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,))
    return True


def _lock(conn: psycopg.Connection[TupleRow]) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
