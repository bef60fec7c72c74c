"""The local Kafka broker: Apache Kafka from Maven Central, one KRaft node on loopback.

The broker outlives the command that starts it, so its whole state lives in files under
`<local_dir>/kafka` (jars, storage, pid file, log). That is what makes `start` and `stop` safe to
call again: starting a running broker or stopping a stopped one does nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError

from deploy.host import (
    file_lock,
    log_tail,
    process_alive,
    run_command,
    signal_process,
    wait_for_exit,
)
from deploy.ports import holder, port_in_use
from runtime.settings import LOCAL_KAFKA_CONTROLLER_PORT, LOCAL_KAFKA_PORT

_ASSETS = Path(__file__).resolve().parent / "kafka"
POM = _ASSETS / "pom.xml"
SERVER_PROPERTIES_TEMPLATE = _ASSETS / "server.properties"
LOG4J_CONFIG = _ASSETS / "log4j2.yaml"

# The upstream start script's G1 settings with half its heap floor: one node under test traffic.
_BROKER_JVM_OPTIONS = (
    "-Xms512m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-Djava.awt.headless=true",
)
_TOOL_JVM_OPTIONS = ("-Xmx256m",)
_BROKER_MAIN = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"
# StorageTool prints a base64url UUID; anything else in its output is logging.
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")

_FETCH_TIMEOUT_S = 600.0
_WHAT_TO_DO = "stop it, or set KAFKA_BOOTSTRAP_SERVERS to a Kafka broker of your own"
_TOOL_TIMEOUT_S = 120.0

_log = logging.getLogger(__name__)


class LocalKafkaError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says why."""


@dataclass(frozen=True)
class KafkaLayout:
    """Where the local broker keeps its files."""

    home: Path

    @classmethod
    def under(cls, local_dir: Path) -> KafkaLayout:
        return cls(local_dir / "kafka")

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def fetch_marker(self) -> Path:
        # Inside libs/, so that replacing the jars and their marker is one rename.
        return self.libs / ".pom-sha256"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def config(self) -> Path:
        return self.home / "server.properties"

    @property
    def log(self) -> Path:
        return self.home / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def lock_file(self) -> Path:
        return self.home / ".lock"


@dataclass(frozen=True)
class LocalKafka:
    """A running local broker."""

    bootstrap_servers: str
    # None when the broker is not this checkout's and /proc does not say which process it is.
    pid: int | None
    # None when the broker is not this checkout's.
    log: Path | None
    # False when the broker was already running and `start` left it alone.
    started: bool
    # The process of a broker found listening on the port that this checkout did not start
    # (another checkout's, say), which it uses as it is and never stops.
    found_listening: str | None = None


def start(
    local_dir: Path,
    *,
    port: int = LOCAL_KAFKA_PORT,
    controller_port: int = LOCAL_KAFKA_CONTROLLER_PORT,
    ready_timeout_s: float = 60.0,
) -> LocalKafka:
    """Fetch, configure and start the broker unless it runs already; return once it answers.

    A Kafka broker already listening on the port that this `local_dir` did not start (another
    checkout's) is used as it is, and never stopped from here; anything else holding the port
    is an error naming the process.

    Another `local_dir` and other ports give a second, independent broker (fault tests stop
    one of their own). Formatting records the controller port in the storage, so a broker must
    be restarted with the ports it was first started with.

    It blocks and runs its own event loop to probe the broker: from async code, call it through
    `asyncio.to_thread`.
    """
    layout = KafkaLayout.under(local_dir)
    bootstrap_servers = f"127.0.0.1:{port}"
    layout.home.mkdir(parents=True, exist_ok=True)
    with file_lock(layout.lock_file):
        pid = _running_pid(layout)
        if pid is not None:
            # It may still be starting, when another command launched it a moment ago.
            _wait_until_ready(layout, bootstrap_servers, pid, None, ready_timeout_s)
            return LocalKafka(bootstrap_servers, pid, layout.log, started=False)
        if port_in_use(port):
            return _use_listening(bootstrap_servers, port)
        if port_in_use(controller_port):
            found = holder(controller_port) or "a process /proc does not name"
            raise LocalKafkaError(
                f"port {controller_port} on 127.0.0.1, the local broker's controller port, is "
                f"held by {found}; {_WHAT_TO_DO}"
            )
        java = _require("java", "Kafka needs Java 17 or newer (Debian: openjdk-17-jre-headless)")
        fetch(layout)
        _render_config(layout, port, controller_port)
        _format_storage(layout, java)
        process = _launch(layout, java)
        _wait_until_ready(layout, bootstrap_servers, process.pid, process, ready_timeout_s)
        return LocalKafka(bootstrap_servers, process.pid, layout.log, started=True)


def _use_listening(bootstrap_servers: str, port: int) -> LocalKafka:
    """The broker another checkout (or anyone) started on the port, if it answers as one."""
    found = holder(port)
    if not _answers(bootstrap_servers):
        raise LocalKafkaError(
            f"port {port} on 127.0.0.1 is held by {found or 'a process /proc does not name'}, "
            f"which does not answer as a Kafka broker; {_WHAT_TO_DO}"
        )
    return LocalKafka(
        bootstrap_servers,
        found.pid if found else None,
        None,
        started=False,
        found_listening=str(found) if found else "a process /proc does not name",
    )


def stop(local_dir: Path, *, timeout_s: float = 30.0) -> bool:
    """Stop the broker, cleanly if it exits within `timeout_s`; return whether it was running."""
    layout = KafkaLayout.under(local_dir)
    if not layout.home.exists():
        return False
    with file_lock(layout.lock_file):
        pid = _running_pid(layout)
        if pid is None:
            return False
        _log.info("stopping the local Kafka broker (pid %d)", pid)
        signal_process(pid, signal.SIGTERM)
        if not wait_for_exit(pid, timeout_s):
            _log.warning("the broker did not exit within %.0f s; killing it", timeout_s)
            signal_process(pid, signal.SIGKILL)
            if not wait_for_exit(pid, 10.0):
                raise LocalKafkaError(f"the broker (pid {pid}) survived SIGKILL")
        layout.pid_file.unlink(missing_ok=True)
        return True


def fetch(layout: KafkaLayout) -> bool:
    """Bring the broker's jars from Maven Central unless the pom is unchanged since the last fetch.

    Returns whether it fetched.
    """
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if layout.fetch_marker.is_file() and layout.fetch_marker.read_text().strip() == digest:
        return False
    mvn = _require("mvn", "Maven fetches the Kafka broker (Debian: maven)")
    _log.info("fetching Apache Kafka from Maven Central into %s", layout.libs)
    # Jars land beside libs/ first: an interrupted fetch, or one for a new version, must never
    # leave a mix of versions on the classpath.
    staging = layout.home / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    run_command(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ],
        what="fetching Kafka with Maven",
        timeout_s=_FETCH_TIMEOUT_S,
    )
    (staging / layout.fetch_marker.name).write_text(f"{digest}\n")
    shutil.rmtree(layout.libs, ignore_errors=True)
    staging.rename(layout.libs)
    return True


def _render_config(layout: KafkaLayout, port: int, controller_port: int) -> None:
    template = SERVER_PROPERTIES_TEMPLATE.read_text()
    layout.config.write_text(
        template.format(log_dir=layout.data, port=port, controller_port=controller_port)
    )


def _format_storage(layout: KafkaLayout, java: str) -> None:
    if (layout.data / "meta.properties").exists():
        return
    _log.info("formatting Kafka storage in %s", layout.data)
    output = _run_tool(layout, java, _STORAGE_TOOL, "random-uuid")
    cluster_ids = [line for line in output.split() if _CLUSTER_ID.match(line)]
    if not cluster_ids:
        raise LocalKafkaError(f"StorageTool random-uuid printed no cluster id:\n{output}")
    _run_tool(
        layout,
        java,
        _STORAGE_TOOL,
        "format",
        "--standalone",
        "-t",
        cluster_ids[-1],
        "-c",
        str(layout.config),
    )


def _launch(layout: KafkaLayout, java: str) -> subprocess.Popen[bytes]:
    # The previous run's log is kept: it is the only trace of why that broker went away.
    if layout.log.exists():
        layout.log.replace(layout.log.with_name(layout.log.name + ".1"))
    _log.info("starting the local Kafka broker; log: %s", layout.log)
    with layout.log.open("wb") as log:
        process = subprocess.Popen(
            [
                java,
                *_BROKER_JVM_OPTIONS,
                f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
                "-cp",
                _classpath(layout),
                _BROKER_MAIN,
                str(layout.config),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=layout.home,
            # Its own session: the broker must not die with the terminal or the command's group.
            start_new_session=True,
        )
    layout.pid_file.write_text(f"{process.pid}\n")
    return process


def _wait_until_ready(
    layout: KafkaLayout,
    bootstrap_servers: str,
    pid: int,
    process: subprocess.Popen[bytes] | None,
    timeout_s: float,
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        exited = process.poll() is not None if process is not None else not process_alive(pid)
        if exited:
            layout.pid_file.unlink(missing_ok=True)
            raise LocalKafkaError(
                f"the Kafka broker exited while starting.\n{log_tail(layout.log)}"
            )
        if _answers(bootstrap_servers):
            return
        if time.monotonic() > deadline:
            raise LocalKafkaError(
                f"the Kafka broker (pid {pid}) did not answer within {timeout_s:.0f} s; it is "
                f"still running.\n{log_tail(layout.log)}"
            )
        time.sleep(0.5)


def _answers(bootstrap_servers: str) -> bool:
    host, port = bootstrap_servers.rsplit(":", 1)
    # A plain connect first: aiokafka logs an error for every refused bootstrap attempt.
    if not port_in_use(int(port), host):
        return False
    return asyncio.run(_metadata_lists_a_broker(bootstrap_servers))


async def _metadata_lists_a_broker(bootstrap_servers: str) -> bool:
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    try:
        await client.bootstrap()
        # The controller may answer before the broker half has registered itself.
        return bool(client.cluster.brokers())
    except KafkaError:
        return False
    finally:
        await client.close()


def _running_pid(layout: KafkaLayout) -> int | None:
    """The pid in the pid file if that process is alive and is this layout's broker."""
    try:
        pid = int(layout.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if process_alive(pid) and _is_our_broker(pid, layout):
        return pid
    layout.pid_file.unlink(missing_ok=True)
    return None


def _is_our_broker(pid: int, layout: KafkaLayout) -> bool:
    # Pids are reused: after a reboot the file may name some unrelated process.
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return _BROKER_MAIN.encode() in argv and str(layout.config).encode() in argv


def _classpath(layout: KafkaLayout) -> str:
    # Java expands a trailing `*` itself; no shell is involved.
    return f"{layout.libs}/*"


def _run_tool(layout: KafkaLayout, java: str, main_class: str, *args: str) -> str:
    return run_command(
        [
            java,
            *_TOOL_JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            _classpath(layout),
            main_class,
            *args,
        ],
        what=f"{main_class} {args[0]}",
        timeout_s=_TOOL_TIMEOUT_S,
        cwd=layout.home,
    ).stdout


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise LocalKafkaError(f"`{tool}` is not on PATH. {hint}.")
    return path
