"""Debian's Prometheus and promtool: scraping a local pipeline, checking the alert rules.

Both binaries come from Debian's `prometheus` package (2.42 on bookworm), installed with apt-get
on first use when running as root, otherwise with a message saying what to install, as the local
PostgreSQL server and Chromium are. Nothing is downloaded from anywhere but the distribution's
package archive.

The package's post-install script would start a system-wide Prometheus service on port 9090.
Nothing here uses one: the install runs under a policy-rc.d that refuses every service start
(unless the machine already has a policy of its own), and a service started regardless is
stopped and disabled. The Prometheus Triggerline runs is a child process on 127.0.0.1, with its
own config file and data directory, stopped with its parent.

`python -m deploy.local_prometheus` scrapes a local pipeline (`triggerline run`) with
deploy/prometheus/local.yml, keeping its data under the local dir.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy.host import log_tail, run_command
from runtime.settings import REPO_ROOT, get_settings

CONFIG_DIR = REPO_ROOT / "deploy" / "prometheus"
LOCAL_CONFIG = CONFIG_DIR / "local.yml"
DEFAULT_PORT = 9090
# The local server's data: bounded by age and by size, whichever is reached first.
RETENTION_TIME = "7d"
RETENTION_SIZE = "1GB"

_PACKAGE = "prometheus"
_SERVICE = "prometheus"
_POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
_POLICY_REFUSING_STARTS = "#!/bin/sh\n# No service starts while Triggerline installs.\nexit 101\n"
_INSTALL_TIMEOUT_S = 900.0
# apt-get waits this long for another apt-get (a concurrent test run's install) to finish.
_APT_LOCK_WAIT_S = 600
_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0

_log = logging.getLogger(__name__)


class LocalPrometheusError(RuntimeError):
    """Prometheus is missing, could not be installed or did not start; the message says why."""


@dataclass(frozen=True)
class PrometheusBinaries:
    """Where the server and its tool are."""

    prometheus: Path
    promtool: Path


def find() -> PrometheusBinaries | None:
    """The installed server and promtool, or None when either is missing."""
    server = shutil.which("prometheus")
    tool = shutil.which("promtool")
    if server is None or tool is None:
        return None
    return PrometheusBinaries(Path(server), Path(tool))


def ensure() -> PrometheusBinaries:
    """The server and promtool, installing Debian's package first if either is missing."""
    found = find()
    if found is not None:
        return found
    _install()
    found = find()
    if found is None:
        raise LocalPrometheusError(
            "installed Debian's prometheus package, yet `prometheus` or `promtool` is not on PATH"
        )
    return found


def promtool(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run promtool (installing it first if needed); the result is returned whatever its exit."""
    tool = ensure().promtool
    return run_command(
        [str(tool), *args], what=f"promtool {args[0]}", timeout_s=timeout_s, check=False
    )


@dataclass
class RunningPrometheus:
    """A Prometheus server this process started, on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(config: Path, data_dir: Path, port: int = DEFAULT_PORT) -> RunningPrometheus:
    """Start Prometheus with `config` on 127.0.0.1:`port`, its data in `data_dir`, and wait
    until it is ready. Its output goes to `prometheus.log` in the data directory."""
    binaries = ensure()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "prometheus.log"
    args = [
        str(binaries.prometheus),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--storage.tsdb.retention.time={RETENTION_TIME}",
        f"--storage.tsdb.retention.size={RETENTION_SIZE}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(
            args, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    running = RunningPrometheus(process, port, log)
    try:
        _wait_until_ready(running)
    except BaseException:
        running.stop()
        raise
    return running


@contextlib.contextmanager
def running(config: Path, data_dir: Path, port: int = DEFAULT_PORT) -> Iterator[RunningPrometheus]:
    """A Prometheus for the duration of the block, stopped afterwards."""
    server = start(config, data_dir, port)
    try:
        yield server
    finally:
        server.stop()


def _wait_until_ready(server: RunningPrometheus) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise LocalPrometheusError(
                    f"prometheus exited with status {server.process.returncode}\n"
                    + log_tail(server.log)
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{server.url}/-/ready").status_code == 200:
                    return
            time.sleep(0.1)
    raise LocalPrometheusError(
        f"prometheus not ready on {server.url} after {_READY_TIMEOUT_S:.0f} s\n"
        + log_tail(server.log)
    )


def _install() -> None:
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        raise LocalPrometheusError(
            "no `prometheus` and `promtool` on PATH; install Debian's `prometheus` package "
            "(the alert-rule and scrape tests run them)"
        )
    _log.info("installing Prometheus with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock_wait = f"DPkg::Lock::Timeout={_APT_LOCK_WAIT_S}"
    commands = (
        [apt_get, "-o", lock_wait, "update"],
        [apt_get, "-o", lock_wait, "install", "-y", "--no-install-recommends", _PACKAGE],
    )
    with _services_not_started():
        for args in commands:
            run_command(args, what=" ".join(args[3:]), timeout_s=_INSTALL_TIMEOUT_S, env=env)
    _stop_system_service()


@contextlib.contextmanager
def _services_not_started() -> Iterator[None]:
    """Debian's maintainer scripts start services through invoke-rc.d, which asks policy-rc.d
    first; exit status 101 forbids it. A policy the machine already has is left as it is."""
    if _POLICY_RC_D.exists():
        yield
        return
    _POLICY_RC_D.write_text(_POLICY_REFUSING_STARTS)
    _POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        _POLICY_RC_D.unlink(missing_ok=True)


def _stop_system_service() -> None:
    """Stop and disable the package's service if the machine's own policy let it start."""
    systemctl = shutil.which("systemctl")
    invoke_rc_d = shutil.which("invoke-rc.d")
    if systemctl is not None and Path("/run/systemd/system").is_dir():
        args = [systemctl, "disable", "--now", _SERVICE]
    elif invoke_rc_d is not None and Path("/etc/init.d", _SERVICE).exists():
        args = [invoke_rc_d, _SERVICE, "stop"]
    else:
        return
    run_command(args, what=" ".join(args[1:]), timeout_s=60.0, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local_prometheus",
        description="Scrape a local Triggerline pipeline with Prometheus on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="Prometheus's own port")
    parser.add_argument("--config", type=Path, default=LOCAL_CONFIG, help="scrape config")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # A service manager stops with SIGTERM: Prometheus is stopped with this process either way.
    signal.signal(signal.SIGTERM, _interrupt)
    data_dir = get_settings().local_dir / "prometheus"
    with running(args.config, data_dir, args.port) as server:
        print(f"prometheus: ready on {server.url} (data in {data_dir}, log {server.log})")
        with contextlib.suppress(KeyboardInterrupt):
            server.process.wait()


def _interrupt(signum: int, _: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    main()
