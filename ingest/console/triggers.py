"""The triggers list (`GET /console` and `/console/triggers`): each trigger's kind, status and
destinations, its events of the last hour by outcome, and its last error.

Paged like `GET /triggers`, with the same cursor; the delivery-log figures come from two
queries for the whole page (`ingest.registry.delivery_summary`), not one per trigger.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ingest.api.triggers import decode_cursor, encode_cursor
from ingest.console.security import PREFIX
from ingest.console.web import SignedIn, render
from ingest.registry.delivery_summary import last_errors, outcome_counts
from ingest.registry.store import list_triggers
from schemas.records import Outcome

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 50
RECENT = timedelta(hours=1)
# The order outcomes are shown in: the contract's, an event's steps roughly as they happen.
OUTCOME_ORDER: tuple[str, ...] = get_args(Outcome)


@router.get("")
@router.get("/triggers")
async def triggers_list(
    request: Request,
    operator: SignedIn,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    rows = await list_triggers(
        operator.conn,
        operator.project_id,
        definition=None,
        status=None,
        limit=PAGE_SIZE + 1,
        after=None if cursor is None else decode_cursor(cursor),
    )
    page, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    ids = [row.id for row in page]
    since = datetime.now(UTC) - RECENT
    counts = await outcome_counts(operator.conn, operator.project_id, ids, since)
    errors = await last_errors(operator.conn, operator.project_id, ids)
    return render(
        request,
        "triggers.html",
        {
            "triggers": page,
            "counts": {
                trigger_id: [(o, by_outcome[o]) for o in OUTCOME_ORDER if o in by_outcome]
                for trigger_id, by_outcome in counts.items()
            },
            "last_errors": errors,
            "next_cursor": encode_cursor(page[-1]) if more else None,
            "first_page": cursor is None,
        },
        session=operator.session,
    )
