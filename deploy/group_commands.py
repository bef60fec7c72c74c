"""`triggerline groups ...`: the consumer groups of the stages."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from deploy.group_reset import (
    STAGE_NAMES,
    GroupResetError,
    apply_reset,
    consumer_stage,
    format_plan,
    parse_target,
    plan_reset,
    refusal,
)
from runtime.settings import get_settings

groups_app = typer.Typer(help="The stages' consumer groups.", no_args_is_help=True)


@groups_app.command("reset")
def reset_command(
    stage_name: Annotated[
        str, typer.Argument(metavar="STAGE", help=f"One of: {', '.join(STAGE_NAMES)}.")
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="TIMESTAMP",
            help="ISO 8601 time with a zone (2026-12-04T09:00:00Z), or earliest or latest.",
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
) -> None:
    """Move a stopped stage's consumer group to the first record at or after a time: the stage
    processes every record from there again (or skips to it), for all projects."""
    stage = consumer_stage(stage_name)
    target = parse_target(to)
    settings = get_settings()
    plan = asyncio.run(plan_reset(settings, stage, target))
    if plan.members and not dry_run:
        raise GroupResetError(refusal(plan))
    typer.echo(format_plan(plan))
    if plan.members:
        typer.secho(f"\nnot applicable now: {refusal(plan)}", fg=typer.colors.YELLOW)
    if dry_run:
        typer.echo("\ndry run: nothing changed")
        return
    if not plan.moving:
        typer.echo("\nthe group is already there: nothing to change")
        return
    if not yes:
        typer.confirm(f"\ncommit these offsets for group {plan.group}?", abort=True)
    asyncio.run(apply_reset(settings, plan))
    typer.secho(
        f"group {plan.group}: committed new offsets on {len(plan.moving)} partition(s)",
        fg=typer.colors.GREEN,
    )
