"""An event's journey: `GET /console/events/{event_id}?trigger_id=`, in one request.

The timeline is the journey `GET /events/{id}` answers (`ingest.api.deliveries.event_journey_of`):
received; routed, or skipped with the reason, per destination; each attempt with its HTTP
status, latency and error; each destination's final outcome and the event's. Beside it: the
payload as received (`ingest.console.payloads`) and the newest other events of the same
correlation id. An id two triggers share shows the choices, as the API's 409 does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from psycopg import AsyncConnection

from ingest.api.deliveries import SharedEventId, event_journey_of
from ingest.api.dependencies import settings_of
from ingest.console.payloads import payload_of
from ingest.console.security import PREFIX
from ingest.console.web import SignedIn, render
from ingest.registry.deliveries import CorrelatedEvent, correlated_events
from ingest.registry.errors import NotFound
from ingest.registry.store import find_trigger

router = APIRouter(prefix=PREFIX, include_in_schema=False)
# Other events of the conversation listed, newest first.
RELATED_EVENTS = 20


@router.get("/events/{event_id:path}")
async def journey(
    request: Request,
    event_id: str,
    operator: SignedIn,
    trigger_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    conn, project_id = operator.conn, operator.project_id
    try:
        found = await event_journey_of(conn, project_id, event_id, trigger_id or None)
    except SharedEventId as shared:
        choices = [(t, await _trigger_name(conn, project_id, t)) for t in shared.trigger_ids]
        return render(
            request,
            "event_choices.html",
            {"event_id": event_id, "choices": choices},
            status=409,
            session=operator.session,
        )
    received = next((s for s in found.steps if s.outcome == "received"), None)
    payload = await payload_of(
        settings_of(request), found.trigger_id, event_id, None if received is None else received.at
    )
    related: list[CorrelatedEvent] = []
    if found.correlation_id is not None:
        others = await correlated_events(
            conn, project_id, found.correlation_id, limit=RELATED_EVENTS + 1
        )
        related = [e for e in others if (e.event_id, e.trigger_id) != (event_id, found.trigger_id)][
            :RELATED_EVENTS
        ]
    return render(
        request,
        "journey.html",
        {
            "journey": found,
            "trigger_name": await _trigger_name(conn, project_id, found.trigger_id),
            "payload": payload,
            "related": related,
            "related_limit": RELATED_EVENTS,
        },
        session=operator.session,
    )


async def _trigger_name(conn: AsyncConnection[Any], project_id: str, trigger_id: str) -> str | None:
    """The live trigger's name; None once it is deleted (its journeys stay)."""
    try:
        return (await find_trigger(conn, project_id, trigger_id)).name
    except NotFound:
        return None
