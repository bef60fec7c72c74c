"""Replays: list, start (a dry run first), watch and cancel, through the replay service
(`ingest.replay.service`) exactly as `/replays` does.

The form posts with `action=dry_run`; the page shows the dry run's report and, with the same
request in hidden fields, a second button that starts it (`action=start`). The form offers one
trigger or all of them, where the API takes a list.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from ingest.api.dependencies import resource_id, settings_of
from ingest.api.models import DryRunOut
from ingest.api.replays import SHOWN_KEY_CHARACTERS
from ingest.console.filters import Checked, time_field, trigger_choices
from ingest.console.security import PREFIX
from ingest.console.web import Operator, SignedIn, checked_form, render
from ingest.registry.errors import FieldError, Invalid, RegistryError
from ingest.registry.validation import pydantic_errors
from ingest.replay.requests import ReplayCreate
from ingest.replay.service import ReplayService

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 20
# While a replay runs, its page reloads this often (a meta refresh: no script needed).
REFRESH_S = 2
TARGET_KINDS = ("http", "kafka", "noop")
# The form's fields, as posted and as shown again.
FIELDS = ("from", "to", "trigger_id", "event_ids", "rate_per_s", "target_kind", "target_ref")


def _service(request: Request) -> ReplayService:
    return ReplayService(settings_of(request))


async def _list_page(
    request: Request,
    operator: Operator,
    *,
    form: dict[str, str],
    errors: list[FieldError],
    message: str | None = None,
    before: datetime | None = None,
    status: int = 200,
) -> Response:
    page = await _service(request).list(
        operator.conn, operator.project_id, limit=PAGE_SIZE, before=before
    )
    triggers = await trigger_choices(operator.conn, operator.project_id)
    return render(
        request,
        "replays.html",
        {
            "replays": page.items,
            "next_before": None if page.next_before is None else page.next_before.isoformat(),
            "triggers": triggers,
            "names": {t.id: t.name for t in triggers},
            "form": form,
            "errors": errors,
            "message": message,
            "target_kinds": TARGET_KINDS,
        },
        status=status,
        session=operator.session,
    )


@router.get("/replays")
async def replays(
    request: Request, operator: SignedIn, before: Annotated[str, Query(max_length=64)] = ""
) -> Response:
    checked = Checked()
    moment = checked.time("before", before)
    # A range to start from: the last hour.
    form = dict.fromkeys(FIELDS, "") | {"from": time_field(datetime.now(UTC) - timedelta(hours=1))}
    return await _list_page(
        request,
        operator,
        form=form,
        errors=checked.errors,
        before=moment,
        status=422 if checked.errors else 200,
    )


@router.post("/replays")
async def start(request: Request, operator: SignedIn) -> Response:
    """`action=dry_run` reports what the replay would do; `action=start` starts it."""
    posted = await checked_form(request, operator)
    form = {name: posted.get(name, "").strip() for name in FIELDS}
    dry_run = posted.get("action") != "start"
    try:
        body = _request(form, dry_run)
        started = await _service(request).start(
            operator.conn, operator.project_id, _caller(operator), body
        )
    except Invalid as invalid:
        return await _list_page(
            request, operator, form=form, errors=list(invalid.errors), status=422
        )
    except RegistryError as refused:
        return await _list_page(
            request, operator, form=form, errors=[], message=refused.message, status=refused.status
        )
    if isinstance(started, DryRunOut):
        return render(
            request,
            "replay_dry_run.html",
            {"report": started, "form": form},
            session=operator.session,
        )
    return RedirectResponse(f"{PREFIX}/replays/{started.id}", status_code=303)


@router.get("/replays/{replay_id}")
async def replay(request: Request, replay_id: str, operator: SignedIn) -> Response:
    found = await _service(request).show(
        operator.conn, operator.project_id, resource_id(replay_id, "replay")
    )
    triggers = await trigger_choices(operator.conn, operator.project_id)
    watching = found.state in ("pending", "running") or not found.settled
    return render(
        request,
        "replay.html",
        {
            "replay": found,
            "names": {t.id: t.name for t in triggers},
            "refresh_s": REFRESH_S if watching else None,
        },
        session=operator.session,
    )


@router.post("/replays/{replay_id}/cancel")
async def cancel(request: Request, replay_id: str, operator: SignedIn) -> Response:
    await checked_form(request, operator)
    cancelled = await _service(request).cancel(
        operator.conn, operator.project_id, resource_id(replay_id, "replay")
    )
    return RedirectResponse(f"{PREFIX}/replays/{cancelled.id}", status_code=303)


def _caller(operator: Operator) -> str:
    """Who started it, as the API names its callers, marked as the console."""
    return f"console, api key {operator.session.api_key[:SHOWN_KEY_CHARACTERS]}"


def _request(form: dict[str, str], dry_run: bool) -> ReplayCreate:
    """The API's request body from the form; Invalid naming every refused field."""
    checked = Checked()
    body: dict[str, Any] = {"dry_run": dry_run}
    for name in ("from", "to"):
        moment = checked.time(name, form[name])
        if moment is not None:
            body[name] = moment
    if form["trigger_id"]:
        body["trigger_ids"] = [form["trigger_id"]]
    event_ids = [line.strip() for line in form["event_ids"].splitlines() if line.strip()]
    if event_ids:
        body["event_ids"] = event_ids
    if form["rate_per_s"]:
        body["rate_per_s"] = form["rate_per_s"]
    if form["target_kind"]:
        body["target"] = {"kind": form["target_kind"], "ref": form["target_ref"]}
    try:
        request = ReplayCreate.model_validate(body)
    except ValidationError as invalid:
        # A time already refused is not refused again as missing.
        refused = {e.path for e in checked.errors}
        more = [e for e in pydantic_errors(invalid, "body") if e.path not in refused]
        raise Invalid([*checked.errors, *more]) from None
    if checked.errors:
        raise Invalid(checked.errors)
    return request
