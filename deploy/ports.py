"""Who holds a local TCP port: asked before the local broker or cluster is started on it.

A port may already be held by the same service started from another checkout (whose `.local`
this one cannot see), or by something else entirely; the caller tells which by speaking the
service's protocol, and names the holder when it cannot use it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_LISTEN = "0A"
# Enough of a command line to tell which program, and which checkout's files, it runs with.
_SHOWN_ARGS_CHARS = 160


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


@dataclass(frozen=True, slots=True)
class PortHolder:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})"


def holder(port: int, proc: Path = _PROC) -> PortHolder | None:
    """The process listening on `port`, if /proc says (it may not name another user's
    processes to a user who is not root)."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in inodes:
                return PortHolder(int(entry.name), _command_line(entry))
    return None


def _listening_inodes(port: int, proc: Path) -> set[str]:
    """`socket:[inode]` of every listening TCP socket on the port (IPv4 and IPv6)."""
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                found.add(f"socket:[{inode}]")
    return found


def _command_line(process: Path) -> str:
    try:
        args = (process / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return "command line unknown"
    words = [arg.decode(errors="replace") for arg in args]
    text = " ".join(words)
    if len(text) <= _SHOWN_ARGS_CHARS:
        return text
    # The program, then its last arguments, which name its config or data directory (a JVM
    # puts its options and long class path in between).
    tail: list[str] = []
    for word in reversed(words[1:]):
        if len(word) + sum(len(w) + 1 for w in tail) > _SHOWN_ARGS_CHARS // 2:
            break
        tail.insert(0, word)
    return " ".join((Path(words[0]).name, "...", *tail))
