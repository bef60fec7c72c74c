"""The ops glance: `GET /console/ops`, from `runtime.status`, the source `triggerline status`
prints. It shows the whole deployment (every project shares the stages), never an event."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ingest.api.dependencies import settings_of
from ingest.console.security import PREFIX
from ingest.console.web import SignedIn, render
from runtime.status import read_status
from runtime.status_text import age, attention

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/ops")
async def ops(request: Request, operator: SignedIn) -> Response:
    status = await read_status(settings_of(request))
    relay = status.database.relay
    return render(
        request,
        "ops.html",
        {
            "status": status,
            "attention": attention(status),
            "relay_oldest": None
            if relay is None or relay.oldest_s is None
            else age(relay.oldest_s),
        },
        # What can be read is shown either way; a service that does not answer is an outage.
        status=200 if status.reachable else 503,
        session=operator.session,
    )
