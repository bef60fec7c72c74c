"""`triggerline triggers preview-filter`: the filter preview the API offers
(`POST /triggers/{id}/filter-preview`), through the same service, printed one event a line."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import orjson
import typer

from deploy.registry_commands import ProjectOption, TriggerId, connect, project_id_of
from ingest.replay.preview import (
    DEFAULT_LAST,
    MAX_EVENTS,
    FilterPreview,
    PreviewWindow,
    preview_filter,
    preview_window,
)
from ingest.replay.rules import RuleOverrides
from runtime.settings import get_settings


def preview_filter_command(
    *,
    project: ProjectOption,
    trigger_id: TriggerId,
    filter_source: Annotated[
        str | None,
        typer.Option("--filter", help="CEL filter to try instead of the trigger's; '' for none."),
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option(help="Event type to try instead of the trigger's list; repeat for more."),
    ] = None,
    last: Annotated[
        int | None,
        typer.Option(help=f"The newest this many events (1 to {MAX_EVENTS}; {DEFAULT_LAST})."),
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Events received at or after this time (UTC).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="Events received before this time (UTC); now.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole answer as JSON.")
    ] = False,
) -> None:
    """Evaluate a filter (and event-type list) against the trigger's recent raw events and
    print, per event, whether it would be routed and why not; then the totals."""
    window = preview_window(last, since, until)
    overrides = RuleOverrides(filter=filter_source, event_types=event_type)
    preview = asyncio.run(_preview(project, trigger_id, overrides, window))
    if as_json:
        typer.echo(orjson.dumps(preview, option=orjson.OPT_INDENT_2).decode())
        return
    for line in preview_lines(preview):
        typer.echo(line)


async def _preview(
    project: str, trigger_id: str, overrides: RuleOverrides, window: PreviewWindow
) -> FilterPreview:
    async with await connect() as conn:
        return await preview_filter(
            conn,
            get_settings(),
            project_id=await project_id_of(conn, project),
            trigger_id=trigger_id,
            overrides=overrides,
            window=window,
        )


def preview_lines(preview: FilterPreview) -> list[str]:
    """One line per event (verdict, event id, event type, reason), oldest first; the totals."""
    lines = [
        "\t".join(
            (
                event.verdict,
                event.event_id,
                event.event_type or "-",
                # A clause written over several lines still prints on its event's line.
                (event.reason or "").replace("\n", " "),
            )
        ).rstrip()
        for event in preview.events
    ]
    totals = ", ".join(f"{verdict} {count}" for verdict, count in preview.totals.items())
    lines.append(f"{len(preview.events)} events: {totals}; {preview.scanned} records scanned")
    if preview.scan_bound_reached:
        lines.append("stopped at the bound on records scanned: older events were not read")
    if preview.event_limit_reached:
        lines.append(f"the range holds more than {MAX_EVENTS} events: the oldest are shown")
    return lines
