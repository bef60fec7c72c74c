"""Running local tools for the deploy modules: commands, file locks, log tails, processes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

LOG_TAIL_LINES = 30


class HostCommandError(RuntimeError):
    """A local tool failed or took too long; the message names it and shows its output."""


def run_command(
    args: list[str],
    *,
    what: str,
    timeout_s: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=cwd,
            env=env,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as error:
        raise HostCommandError(f"{what} took longer than {timeout_s:.0f} s") from error
    if check and result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise HostCommandError(f"{what} failed (exit {result.returncode}):\n{output}")
    return result


def log_tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log at {log})"
    return f"last lines of {log}:\n" + "\n".join(lines[-LOG_TAIL_LINES:])


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialize commands that start or stop the same service."""
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def process_alive(pid: int) -> bool:
    # A child of this process lingers as a zombie until reaped, and signal 0 still reaches it.
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in {"Z", "X"}


def wait_for_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def signal_process(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
