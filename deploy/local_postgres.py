"""The local PostgreSQL cluster: Debian's server binaries, a private data directory, loopback only.

PostgreSQL refuses to run as root, so when this runs as root the cluster belongs to the `postgres`
OS user (which Debian's package creates) and every server command runs through `runuser`.
Like the broker, the cluster outlives the command that starts it; `pg_ctl status` is the truth
about whether it runs, which makes `start` and `stop` safe to call again.
"""

from __future__ import annotations

import logging
import os
import pwd
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import errors, sql

from deploy.host import file_lock, log_tail, run_command
from deploy.ports import holder, port_in_use
from runtime.settings import LOCAL_DATABASE, LOCAL_POSTGRES_PORT

DATABASE_URL = f"postgresql://postgres@127.0.0.1:{LOCAL_POSTGRES_PORT}/{LOCAL_DATABASE}"
_ADMIN_URL = f"postgresql://postgres@127.0.0.1:{LOCAL_POSTGRES_PORT}/postgres"

_OS_USER = "postgres"
_SERVER_BINARIES = Path("/usr/lib/postgresql")
_PG_CTL_NOT_RUNNING = 3
_PG_CTL_NO_DATA_DIR = 4
_INSTALL_TIMEOUT_S = 900.0
_COMMAND_TIMEOUT_S = 120.0
_SERVER_WAIT_S = 60

_log = logging.getLogger(__name__)


class LocalPostgresError(RuntimeError):
    """The local cluster could not be installed, started or stopped; the message says why."""


@dataclass(frozen=True)
class PostgresLayout:
    """Where the local cluster keeps its files."""

    home: Path

    @classmethod
    def under(cls, local_dir: Path) -> PostgresLayout:
        return cls(local_dir / "postgres")

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log(self) -> Path:
        return self.home / "postgres.log"

    @property
    def lock_file(self) -> Path:
        return self.home / ".lock"


@dataclass(frozen=True)
class LocalPostgres:
    """A running local cluster with Triggerline's database in it."""

    database_url: str
    # None when the cluster is not this checkout's.
    log: Path | None
    # False when the cluster was already running and `start` left it alone.
    started: bool
    # The process of a PostgreSQL found listening on the port that this checkout did not start
    # (another checkout's, say), which it uses as it is and never stops.
    found_listening: str | None = None


def start(local_dir: Path) -> LocalPostgres:
    """Install, initialise and start the cluster as needed, and create Triggerline's database.

    A PostgreSQL already listening on the port that this `local_dir` did not start (another
    checkout's) is used as it is, if Triggerline's database can be created in it, and never
    stopped from here; anything else holding the port is an error naming the process.
    """
    layout = PostgresLayout.under(local_dir)
    if not (layout.data / "PG_VERSION").exists() and port_in_use(LOCAL_POSTGRES_PORT):
        # Not this checkout's cluster, which has never been initialised: nothing to install.
        return _use_listening()
    bin_dir = server_bin_dir()
    _prepare_home(layout)
    with file_lock(layout.lock_file):
        if not (layout.data / "PG_VERSION").exists():
            _log.info("initialising a PostgreSQL cluster in %s", layout.data)
            _run_as_owner(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(layout.data),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    # Byte-order collation: the same on every machine, whatever locales it has.
                    "--no-locale",
                ],
                layout,
                what="initdb",
            )
        started = not _is_running(bin_dir, layout)
        if started and port_in_use(LOCAL_POSTGRES_PORT):
            return _use_listening()
        if started:
            _start_server(bin_dir, layout)
        _create_database()
        return LocalPostgres(DATABASE_URL, layout.log, started=started)


def _use_listening() -> LocalPostgres:
    """The PostgreSQL another checkout (or anyone) started on the port, if Triggerline's
    database can be created in it."""
    found = holder(LOCAL_POSTGRES_PORT)
    named = str(found) if found else "a process /proc does not name"
    try:
        _create_database()
    except (LocalPostgresError, psycopg.Error) as error:
        cause = error.__cause__ or error
        raise LocalPostgresError(
            f"port {LOCAL_POSTGRES_PORT} on 127.0.0.1 is held by {named}, which cannot serve "
            f"as Triggerline's database ({str(cause).strip().splitlines()[0]}); stop it, or set "
            "DATABASE_URL to a PostgreSQL database of your own"
        ) from error
    return LocalPostgres(DATABASE_URL, None, started=False, found_listening=named)


def stop(local_dir: Path) -> bool:
    """Stop the cluster with a fast shutdown; return whether it was running."""
    layout = PostgresLayout.under(local_dir)
    bin_dir = _newest_bin_dir()
    if bin_dir is None or not (layout.data / "PG_VERSION").exists():
        return False
    with file_lock(layout.lock_file):
        if not _is_running(bin_dir, layout):
            return False
        _log.info("stopping the local PostgreSQL cluster")
        _run_as_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(layout.data),
                "-m",
                "fast",
                "-w",
                "-t",
                str(_SERVER_WAIT_S),
                "stop",
            ],
            layout,
            what="pg_ctl stop",
        )
        return True


def server_bin_dir() -> Path:
    """The newest installed server's bin directory, installing Debian's server if there is none."""
    found = _newest_bin_dir()
    if found is not None:
        return found
    _install_server()
    found = _newest_bin_dir()
    if found is None:
        raise LocalPostgresError(f"installed postgresql, yet no server under {_SERVER_BINARIES}")
    return found


def _newest_bin_dir() -> Path | None:
    candidates = [
        path.parent
        for path in _SERVER_BINARIES.glob("*/bin/pg_ctl")
        if path.parent.parent.name.isdigit()
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda bin_dir: int(bin_dir.parent.name))


def _install_server() -> None:
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        raise LocalPostgresError(
            f"no PostgreSQL server under {_SERVER_BINARIES}; install Debian's `postgresql` "
            "package, or set DATABASE_URL to use your own database"
        )
    _log.info("installing PostgreSQL with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in ([apt_get, "update"], [apt_get, "install", "-y", "postgresql"]):
        run_command(args, what=" ".join(args[1:]), timeout_s=_INSTALL_TIMEOUT_S, env=env)


def _prepare_home(layout: PostgresLayout) -> None:
    for directory in (layout.home, layout.data, layout.socket_dir):
        directory.mkdir(parents=True, exist_ok=True)
    # initdb insists that nobody else can read the data directory.
    layout.data.chmod(0o700)
    if not _as_root():
        return
    owner = pwd.getpwnam(_OS_USER)
    for directory in (layout.home, layout.data, layout.socket_dir):
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    if _run_as_owner(["test", "-w", str(layout.home)], layout, what="test -w", check=False) != 0:
        raise LocalPostgresError(_unreachable_message(layout))


def _unreachable_message(layout: PostgresLayout) -> str:
    for parent in reversed(layout.home.parents):
        if _run_as_owner(["test", "-x", str(parent)], layout, what="test -x", check=False) != 0:
            return (
                f"the `{_OS_USER}` user cannot enter {parent}, so it cannot reach "
                f"{layout.home}; allow it with `chmod o+x {parent}`, or set "
                "TRIGGERLINE_LOCAL_DIR to a directory it can reach"
            )
    return f"the `{_OS_USER}` user cannot write to {layout.home}"


def _is_running(bin_dir: Path, layout: PostgresLayout) -> bool:
    code = _run_as_owner(
        [str(bin_dir / "pg_ctl"), "-D", str(layout.data), "status"],
        layout,
        what="pg_ctl status",
        check=False,
    )
    if code in {_PG_CTL_NOT_RUNNING, _PG_CTL_NO_DATA_DIR}:
        return False
    if code != 0:
        raise LocalPostgresError(f"pg_ctl status failed (exit {code}) for {layout.data}")
    return True


def _start_server(bin_dir: Path, layout: PostgresLayout) -> None:
    _log.info("starting the local PostgreSQL cluster; log: %s", layout.log)
    # pg_ctl hands these to a shell, so paths are quoted.
    server_options = (
        f"-h 127.0.0.1 -p {LOCAL_POSTGRES_PORT} -k {shlex.quote(str(layout.socket_dir))}"
    )
    try:
        _run_as_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(layout.data),
                "-l",
                str(layout.log),
                "-o",
                server_options,
                "-w",
                "-t",
                str(_SERVER_WAIT_S),
                "start",
            ],
            layout,
            what="pg_ctl start",
        )
    except LocalPostgresError as error:
        raise LocalPostgresError(f"{error}\n{log_tail(layout.log)}") from error


def _create_database() -> None:
    try:
        with psycopg.connect(_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (LOCAL_DATABASE,)
            ).fetchone()
            if exists is None:
                _log.info("creating database %s", LOCAL_DATABASE)
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(LOCAL_DATABASE)))
    except errors.DuplicateDatabase:
        pass  # another command created it between the check and the CREATE
    except psycopg.OperationalError as error:
        raise LocalPostgresError(f"cannot reach the local cluster: {error}") from error


def _as_root() -> bool:
    return os.geteuid() == 0


def _run_as_owner(args: list[str], layout: PostgresLayout, *, what: str, check: bool = True) -> int:
    if _as_root():
        runuser = shutil.which("runuser")
        if runuser is None:
            raise LocalPostgresError("`runuser` is not on PATH; it runs PostgreSQL as non-root")
        args = [runuser, "-u", _OS_USER, "--", *args]
    # The owner may not be allowed into the caller's working directory; it is into its own.
    completed = run_command(
        args, what=what, timeout_s=_COMMAND_TIMEOUT_S, cwd=layout.home, check=check
    )
    return completed.returncode
