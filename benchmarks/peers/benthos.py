"""A slim Benthos v4.27.0 for the peer benchmarks: built on first use, then run with a config.

The build is a ten-line `main.go` importing only the components the pairings use (io, pure,
kafka, prometheus) and a `go.mod` requiring the release, compiled with the machine's Go
toolchain from the Go module proxy. Every Go path (module cache, build cache, GOPATH, go env and
telemetry files) lies under `.local/peers/`, so the build leaves nothing elsewhere and
`make clean` removes it. The binary is `.local/peers/benthos`.

    python -m benchmarks.peers.benthos     # build (about a minute on 2 cores) and print the path
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml

from runtime.settings import Settings

MODULE = "github.com/benthosdev/benthos/v4"
VERSION = "v4.27.0"
COMPONENTS = ("io", "kafka", "prometheus", "pure")
GO_MOD = f"""module triggerline.local/peers/benthos

go 1.21

require {MODULE} {VERSION}
"""
MAIN_GO = (
    "package main\n\n"
    'import (\n\t"context"\n\n'
    f'\t"{MODULE}/public/service"\n\n'
    + "".join(f'\t_ "{MODULE}/public/components/{name}"\n' for name in COMPONENTS)
    + ")\n\n"
    "func main() {\n\tservice.RunCLI(context.Background())\n}\n"
)
BUILD_TIMEOUT_S = 900
# Where the official Go distribution installs when it is not on PATH.
GO_FALLBACKS = ("/usr/local/go/bin/go",)


def peers_dir(settings: Settings) -> Path:
    return settings.local_dir / "peers"


def go_env(root: Path) -> dict[str, str]:
    """The environment of `go build`: every path Go writes to under `root`, modules from the
    proxy only, and no toolchain download (the machine's Go must be new enough)."""
    return {
        **os.environ,
        "GOPATH": str(root / "gopath"),
        "GOMODCACHE": str(root / "gopath" / "pkg" / "mod"),
        "GOCACHE": str(root / "gocache"),
        # go env and telemetry files live under the user config dir.
        "XDG_CONFIG_HOME": str(root / "config"),
        "GOENV": str(root / "config" / "go" / "env"),
        "GOFLAGS": "-mod=mod -trimpath -buildvcs=false",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }


def go_binary() -> str:
    found = shutil.which("go") or next((p for p in GO_FALLBACKS if Path(p).exists()), None)
    if found is None:
        raise SystemExit("the peer benchmarks build Benthos with Go 1.21 or newer: none found")
    return found


def ensure_benthos(settings: Settings) -> Path:
    """The Benthos binary, built first if it is missing."""
    root = peers_dir(settings)
    binary = root / "benthos"
    if binary.exists():
        return binary
    source = root / "src"
    source.mkdir(parents=True, exist_ok=True)
    (source / "go.mod").write_text(GO_MOD)
    (source / "main.go").write_text(MAIN_GO)
    print(f"building Benthos {VERSION} into {binary} (about a minute)", file=sys.stderr)
    # Built under another name and renamed, so that an interrupted build leaves no binary.
    building = root / "benthos.building"
    subprocess.run(
        [go_binary(), "build", "-o", str(building), "."],
        cwd=source,
        env=go_env(root),
        check=True,
        timeout=BUILD_TIMEOUT_S,
    )
    building.rename(binary)
    return binary


class Benthos:
    """One running Benthos process."""

    def __init__(self, process: asyncio.subprocess.Process, config: Path) -> None:
        self.process = process
        self.config = config

    @property
    def pid(self) -> int:
        return self.process.pid


@asynccontextmanager
async def running_benthos(
    binary: Path, config: dict[str, Any], work: Path, name: str, env: dict[str, str] | None = None
) -> AsyncIterator[Benthos]:
    """Benthos with `config` (written to `work/<name>.yaml` and linted first), its output in
    `work/<name>.log`; stopped with SIGTERM on the way out."""
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    full_env = {**os.environ, **(env or {})}
    lint = await asyncio.create_subprocess_exec(
        str(binary),
        "lint",
        str(path),
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    problems, _ = await lint.communicate()
    if lint.returncode != 0:
        raise RuntimeError(f"benthos lint {path}: {problems.decode()}")
    with (work / f"{name}.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(binary), "-c", str(path), env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield Benthos(process, path)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


if __name__ == "__main__":
    print(ensure_benthos(Settings()))
