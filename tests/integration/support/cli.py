"""Runs the `triggerline` command as a user would, against one test's database and keys."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

from runtime.settings import Settings
from tests.integration.support.stages import stage_env


@dataclass(frozen=True, slots=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


async def triggerline(settings: Settings, *args: str, answer: str | None = None) -> CliResult:
    """Runs one command; `answer` is typed at its prompts (none: its input is empty)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from deploy.cli import main; main()",
        *args,
        env=stage_env(settings),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate((answer or "").encode())
    assert process.returncode is not None
    return CliResult(process.returncode, stdout.decode(), stderr.decode())
