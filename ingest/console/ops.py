"""The ops glance: `GET /console/ops`, from `runtime.status`, the source `triggerline status`
prints. It shows the whole deployment (every project shares the stages), never an event."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ingest.api.dependencies import settings_of
from ingest.console.security import PREFIX
from ingest.console.web import SignedIn, render
from runtime.status import StatusUnavailable, read_status

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/ops")
async def ops(request: Request, operator: SignedIn) -> Response:
    try:
        status = await read_status(settings_of(request))
    except StatusUnavailable as exc:
        return render(
            request,
            "ops.html",
            {"status": None, "unavailable": str(exc)},
            status=503,
            session=operator.session,
        )
    return render(
        request, "ops.html", {"status": status, "unavailable": None}, session=operator.session
    )
