"""`triggerline dead-letters ...`: re-drive dead letters to the stage that gave up on them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from runtime.redrive import RedriveFilter, RedriveSummary, read_letters, redrive
from runtime.settings import Settings, get_settings

dead_letters_app = typer.Typer(help="Dead-lettered deliveries.", no_args_is_help=True)


def _aware(value: datetime | None) -> datetime | None:
    # Times given without a zone are read as UTC, the zone every record carries.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dead_letters_app.command("redrive")
def redrive_command(
    all_letters: Annotated[
        bool, typer.Option("--all", help="Re-drive every re-drivable dead letter.")
    ] = False,
    trigger: Annotated[str | None, typer.Option(help="Only this trigger's letters.")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only letters written at or after this time (UTC).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="Only letters written before this time (UTC).")
    ] = None,
) -> None:
    """Send dead letters back, unchanged: deliveries to the dispatchers (same webhook-id), raw
    events whose processing failed to the processors."""
    if not (all_letters or trigger or since or until):
        raise typer.BadParameter("choose --all, or narrow with --trigger, --since or --until")
    selection = RedriveFilter(trigger, _aware(since), _aware(until))
    summary = asyncio.run(_run(get_settings(), selection))
    typer.echo(
        f"scanned {summary.scanned} dead letters; {summary.matched} matched; "
        f"re-drove {summary.redriven}"
    )
    for reason, count in sorted(summary.not_redrivable.items()):
        typer.echo(f"not re-drivable ({reason}): {count}")


async def _run(settings: Settings, selection: RedriveFilter) -> RedriveSummary:
    letters = await read_letters(settings)
    with typer.progressbar(length=len(letters), label="re-driving", file=None) as bar:
        return await redrive(settings, letters, selection, bar.update)
