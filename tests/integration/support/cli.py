"""Runs the `triggerline` command as a user would, against one test's database and keys."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import httpx

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


def as_printed(answer: httpx.Response) -> str:
    """The API's error answer as the CLI prints it."""
    body = answer.json()
    message: str = body["error"]
    fields = [f"\n  {error['path']}: {error['message']}" for error in body.get("errors", [])]
    return f"error: {message}" + "".join(fields)


def refused_alike(api: httpx.Response, cli: CliResult) -> None:
    """The CLI refused what the API refused, printing the same message and fields."""
    assert cli.code != 0, cli.stdout
    assert as_printed(api) in cli.stderr, (api.text, cli.stderr)
    assert cli.stdout == ""
