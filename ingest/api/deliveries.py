"""`GET /triggers/{id}/deliveries` and `GET /events/{event_id}`: the delivery log, per project.

Both read what the delivery-log sink wrote to PostgreSQL. An event's journey lists, in order:
received (when ingest accepted it); the processors' decisions (routed to each destination, or
skipped with the reason); each delivery attempt; and the final outcomes, per destination and
for the event (`ingest.api.journeys`). A journey belongs to one trigger: event
ids come from senders, so two triggers of a project can see the same id, and their journeys are
never merged (`?trigger_id=` chooses one when the id is shared).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from ingest.api.auth import ProjectId
from ingest.api.database import Connection
from ingest.api.dependencies import documented_errors, resource_id
from ingest.api.errors import ApiError
from ingest.api.journeys import destination_of, outcomes
from ingest.registry.deliveries import (
    DeliveryFilter,
    DeliveryRow,
    PageAfter,
    event_journey,
    list_deliveries,
)
from ingest.registry.errors import NotFound
from ingest.registry.store import find_trigger
from schemas.records import Outcome
from schemas.redaction import redact_url

router = APIRouter(tags=["deliveries"])

# Event and correlation ids are free text; PostgreSQL cannot compare text holding NUL.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
IdParam = Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL_CHARACTERS)]


class DeliveryStep(BaseModel):
    stage: str
    outcome: str
    at: datetime | None
    event_id: str
    correlation_id: str | None = None
    destination: str | None = Field(
        default=None, description="The destination this step belongs to; null for the event's."
    )
    target_kind: str | None = None
    target_ref: str | None = None
    attempt: int = 0
    reason: str | None = None
    http_status: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    replay: bool = False


class DeliveryPage(BaseModel):
    items: list[DeliveryStep]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class DestinationOutcome(BaseModel):
    name: str
    final_outcome: str = Field(
        description="Its latest of `delivered`, `dead_lettered`, `skipped`, `filter_error`,"
        " `transform_error`; or `in_progress`."
    )


class EventJourney(BaseModel):
    event_id: str
    trigger_id: str
    correlation_id: str | None
    final_outcome: str = Field(
        description="`delivered` only if every destination the event was routed to delivered;"
        " `dead_lettered` if one dead-lettered it; `in_progress` while one is under way; else"
        " the trigger's or the destinations' decision (`skipped`, `filter_error`,"
        " `transform_error`, `ignored`)."
    )
    destinations: list[DestinationOutcome]
    steps: list[DeliveryStep]


@router.get("/triggers/{trigger_id}/deliveries", responses=documented_errors(404))
async def trigger_deliveries(
    *,
    trigger_id: str,
    project_id: ProjectId,
    conn: Connection,
    outcome: Outcome | None = None,
    since: Annotated[datetime | None, Query(description="At or after (UTC if no zone).")] = None,
    until: Annotated[datetime | None, Query(description="Before (UTC if no zone).")] = None,
    event_id: IdParam = None,
    correlation_id: IdParam = None,
    destination: Annotated[str | None, Query(max_length=64, pattern=NO_CONTROL_CHARACTERS)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DeliveryPage:
    """A trigger's delivery-log entries, newest first."""
    trigger_id = resource_id(trigger_id, "trigger")
    await find_trigger(conn, project_id, trigger_id)
    rows = await list_deliveries(
        conn,
        project_id,
        trigger_id,
        DeliveryFilter(
            outcome, as_utc(since), as_utc(until), event_id, correlation_id, destination
        ),
        limit=limit + 1,
        after=None if cursor is None else decode_cursor(cursor),
    )
    page, more = rows[:limit], len(rows) > limit
    return DeliveryPage(
        items=[step_of(row) for row in page],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


@router.get("/events/{event_id}", responses=documented_errors(404, 409))
async def event(
    event_id: str,
    project_id: ProjectId,
    conn: Connection,
    trigger_id: Annotated[
        str | None, Query(description="The trigger whose event this is; needed when shared.")
    ] = None,
) -> EventJourney:
    """One event's whole journey for one trigger, in order."""
    return await event_journey_of(conn, project_id, event_id, trigger_id)


class SharedEventId(ApiError):
    """An event id several triggers of the project saw, asked for without `trigger_id`."""

    def __init__(self, event_id: str, trigger_ids: list[str]) -> None:
        super().__init__(
            409,
            f"event id {event_id!r} belongs to several triggers ({', '.join(trigger_ids)});"
            " choose one with `?trigger_id=`",
        )
        self.trigger_ids = trigger_ids


async def event_journey_of(
    conn: AsyncConnection[Any], project_id: str, event_id: str, trigger_id: str | None
) -> EventJourney:
    """The journey `GET /events/{id}` answers (and the console shows); NotFound, or
    SharedEventId when the id is several triggers' and `trigger_id` does not choose."""
    if not re.fullmatch(NO_CONTROL_CHARACTERS, event_id):
        raise NotFound("event")
    scope = None if trigger_id is None else resource_id(trigger_id, "event")
    rows = await event_journey(conn, project_id, event_id, scope)
    if not rows:
        raise NotFound("event")
    triggers = sorted({row.trigger_id for row in rows})
    if len(triggers) > 1:
        raise SharedEventId(event_id, triggers)
    steps = [step_of(row) for row in rows]
    received_at = next((r.received_at for r in rows if r.received_at is not None), None)
    if received_at is not None:
        steps.insert(
            0, DeliveryStep(stage="ingest", outcome="received", at=received_at, event_id=event_id)
        )
    derived = outcomes(rows)
    return EventJourney(
        event_id=event_id,
        trigger_id=triggers[0],
        correlation_id=next((r.correlation_id for r in rows if r.correlation_id), None),
        final_outcome=derived.event,
        destinations=[
            DestinationOutcome(name=name, final_outcome=outcome)
            for name, outcome in derived.destinations.items()
        ],
        steps=steps,
    )


def step_of(row: DeliveryRow) -> DeliveryStep:
    return DeliveryStep(
        stage=row.stage,
        outcome=row.outcome,
        at=row.at,
        event_id=row.event_id,
        correlation_id=row.correlation_id,
        destination=destination_of(row),
        target_kind=row.target_kind,
        # No target credential is shown, whatever the row holds.
        target_ref=None if row.target_ref is None else redact_url(row.target_ref),
        attempt=row.attempt,
        reason=row.reason,
        http_status=row.http_status,
        error=row.error,
        latency_ms=row.latency_ms,
        replay=row.replay,
    )


def as_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def encode_cursor(row: DeliveryRow) -> str:
    position = f"{row.at.isoformat()}|{row.log_partition}|{row.log_offset}"
    return base64.urlsafe_b64encode(position.encode()).decode()


def decode_cursor(cursor: str) -> PageAfter:
    try:
        at, partition, offset = base64.urlsafe_b64decode(cursor).decode().split("|")
        parsed = (datetime.fromisoformat(at), int(partition), int(offset))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parsed = None
    if parsed is None or parsed[0].tzinfo is None:
        raise ApiError(400, "malformed request: `cursor` is not one this API issued")
    return parsed
