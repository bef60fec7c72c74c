"""The triggers list: `GET /console` and `/console/triggers`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ingest.console.security import PREFIX
from ingest.console.web import SignedIn, render
from ingest.registry.store import list_triggers

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 50


@router.get("")
@router.get("/triggers")
async def triggers_list(request: Request, operator: SignedIn) -> Response:
    rows = await list_triggers(
        operator.conn,
        operator.project_id,
        definition=None,
        status=None,
        limit=PAGE_SIZE,
        after=None,
    )
    return render(request, "triggers.html", {"triggers": rows}, session=operator.session)
