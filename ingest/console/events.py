"""The events search: `GET /console/events`, the project's delivery log newest first.

It reads the rows `GET /triggers/{id}/deliveries` reads (`ingest.registry.deliveries`), for one
trigger or the whole project, keyset-paged with the API's cursors. Each row is one step of an
event's journey and links to that journey. `group=correlation` groups a page's rows by
correlation id (one Slack conversation, one thread), each group linking to all of its events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ingest.api.deliveries import DeliveryStep, decode_cursor, encode_cursor, step_of
from ingest.console.filters import Checked, query, time_field, trigger_choices
from ingest.console.security import PREFIX
from ingest.console.web import SignedIn, render
from ingest.registry.deliveries import DeliveryFilter, list_deliveries
from schemas.records import Outcome

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 50
OUTCOMES: tuple[str, ...] = get_args(Outcome)
GROUPINGS = ("correlation",)
Field = Annotated[str, Query(max_length=400)]


@dataclass(frozen=True, slots=True)
class EventRow:
    step: DeliveryStep
    trigger_id: str


@dataclass(frozen=True, slots=True)
class Group:
    correlation_id: str | None
    rows: list[EventRow]


@router.get("/events")
async def events(
    request: Request,
    operator: SignedIn,
    *,
    event_id: Field = "",
    correlation_id: Field = "",
    outcome: Field = "",
    trigger_id: Field = "",
    since: Field = "",
    until: Field = "",
    group: Field = "",
    cursor: Field = "",
) -> Response:
    conn, project_id = operator.conn, operator.project_id
    checked = Checked()
    where = DeliveryFilter(
        outcome=checked.choice("outcome", outcome, OUTCOMES),
        since=checked.time("since", since),
        until=checked.time("until", until),
        event_id=checked.text("event_id", event_id),
        correlation_id=checked.text("correlation_id", correlation_id),
    )
    checked.ordered(where.since, where.until)
    trigger = await checked.trigger(conn, project_id, "trigger_id", trigger_id)
    grouping = checked.choice("group", group, GROUPINGS)
    triggers = await trigger_choices(conn, project_id)
    form = {
        "event_id": where.event_id or "",
        "correlation_id": where.correlation_id or "",
        "outcome": where.outcome or "",
        "trigger_id": trigger.id if trigger else "",
        "since": time_field(where.since),
        "until": time_field(where.until),
        "group": grouping or "",
    }
    context: dict[str, Any] = {
        "form": form,
        "outcomes": OUTCOMES,
        "triggers": triggers,
        "names": {t.id: t.name for t in triggers},
        "errors": checked.errors,
        "groups": [],
        "rows": [],
        "next_page": None,
    }
    if checked.errors:
        return render(request, "events.html", context, status=422, session=operator.session)
    rows = await list_deliveries(
        conn,
        project_id,
        None if trigger is None else trigger.id,
        where,
        limit=PAGE_SIZE + 1,
        after=decode_cursor(cursor) if cursor else None,
    )
    page = rows[:PAGE_SIZE]
    shown = [EventRow(step_of(row), row.trigger_id) for row in page]
    context["rows"] = shown
    context["groups"] = grouped(shown) if grouping else []
    if len(rows) > PAGE_SIZE:
        context["next_page"] = query(**form, cursor=encode_cursor(page[-1]))
    return render(request, "events.html", context, session=operator.session)


def grouped(rows: list[EventRow]) -> list[Group]:
    """The rows by correlation id, groups in the order of their newest row (the page's order)."""
    groups: dict[str | None, list[EventRow]] = {}
    for row in rows:
        groups.setdefault(row.step.correlation_id, []).append(row)
    return [Group(correlation_id, members) for correlation_id, members in groups.items()]
