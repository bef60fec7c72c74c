"""`POST /triggers/{id}/filter-preview`: what a filter and event-type list would do with the
trigger's recent raw events (`ingest.replay.preview`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import Field

from ingest.api.auth import ProjectId
from ingest.api.database import Connection
from ingest.api.dependencies import documented_errors, settings_of
from ingest.registry.inputs import Body
from ingest.replay.preview import (
    DEFAULT_LAST,
    MAX_EVENTS,
    FilterPreview,
    preview_filter,
    preview_window,
)
from ingest.replay.rules import RuleOverrides

router = APIRouter(tags=["triggers"])


class FilterPreviewRequest(Body):
    filter: str | None = Field(
        default=None,
        description="CEL filter to try instead of the trigger's; an empty string tries none. "
        "Omitted or null: the trigger's own.",
    )
    event_types: list[str] | None = Field(
        default=None,
        description="Event types to try instead of the trigger's; an empty list routes every "
        "type. Omitted or null: the trigger's own.",
    )
    last: int | None = Field(
        default=None,
        description=f"The newest this many events (1 to {MAX_EVENTS}; {DEFAULT_LAST} when no "
        "range is given).",
    )
    since: datetime | None = Field(
        default=None, description="Events received at or after (UTC if no zone); not with `last`."
    )
    until: datetime | None = Field(
        default=None, description="Events received before (UTC if no zone); default now."
    )


@router.post("/triggers/{trigger_id}/filter-preview", responses=documented_errors(404, 422))
async def filter_preview(
    trigger_id: str,
    body: FilterPreviewRequest,
    project_id: ProjectId,
    conn: Connection,
    request: Request,
) -> FilterPreview:
    """Evaluate a filter against the trigger's recent raw events: per event, whether it would
    be routed (`match`), why not (`miss`, `error`, `ignored`), and the totals. Nothing is
    routed or stored; deduplication is not applied."""
    window = preview_window(body.last, body.since, body.until)
    overrides = RuleOverrides(filter=body.filter, event_types=body.event_types)
    return await preview_filter(
        conn,
        settings_of(request),
        project_id=project_id,
        trigger_id=trigger_id,
        overrides=overrides,
        window=window,
    )
