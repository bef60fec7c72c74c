"""One trigger's page (`/console/triggers/{id}`): its webhook URL, pause and resume, the edit
form, its destinations, a filter preview and its last deliveries.

Every change goes through the control-plane service, as the API's routes do; a refused form is
shown again with the service's messages (422, or the refusal's own status), and a saved one
redirects back to the page (303), so reloading never submits twice.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ingest.api.dependencies import control_plane_of, settings_of
from ingest.console.forms import (
    OWN_CONTROLS,
    FormState,
    destination_values,
    edit_errors,
    lines,
    trigger_update,
    trigger_values,
)
from ingest.console.security import PREFIX
from ingest.console.web import Operator, SignedIn, checked_form, render
from ingest.registry.deliveries import DeliveryFilter, list_deliveries
from ingest.registry.errors import FieldError, Invalid, NotFound, RegistryError
from ingest.registry.inputs import TriggerUpdate, parsed
from ingest.registry.service import webhook_url
from ingest.registry.store import TriggerRow, find_trigger
from ingest.replay.preview import MAX_EVENTS, FilterPreview, preview_filter, preview_window
from ingest.replay.rules import RuleOverrides
from kinds import KINDS

router = APIRouter(prefix=PREFIX + "/triggers/{trigger_id}", include_in_schema=False)
RECENT_DELIVERIES = 20
PREVIEW_DEFAULT_LAST = 20
# What a redirect after a change says; looked up by key, so nothing from the URL is echoed.
NOTICES = {
    "paused": "Paused: new events are refused until you resume.",
    "resumed": "Resumed.",
    "saved": "Saved.",
    "destination-added": "Destination added.",
    "destination-saved": "Destination saved.",
    "destination-removed": "Destination removed.",
}


def controls_of(row: TriggerRow) -> tuple[str, ...]:
    """The edit form's own controls this trigger's kind has (a cron trigger has neither)."""
    fields = KINDS[row.definition].config_model.model_fields
    return tuple(control for control in OWN_CONTROLS if control in fields)


async def trigger_page(
    request: Request,
    operator: Operator,
    row: TriggerRow,
    *,
    forms: dict[str, FormState] | None = None,
    preview: FilterPreview | None = None,
    status: int = 200,
) -> Response:
    """The page, with any forms given shown as submitted (and their errors)."""
    forms = dict(forms or {})
    forms.setdefault("edit", FormState(trigger_values(row.name, row.config)))
    for destination in row.destinations:
        forms.setdefault(f"dest-{destination.name}", FormState(destination_values(destination)))
    forms.setdefault("dest-new", FormState(destination_values(None)))
    forms.setdefault(
        "preview",
        FormState(
            {
                "filter": str(row.config.get("filter") or ""),
                "event_types": "\n".join(row.config.get("event_types") or []),
                "last": str(PREVIEW_DEFAULT_LAST),
            }
        ),
    )
    deliveries = await list_deliveries(
        operator.conn, operator.project_id, row.id, DeliveryFilter(), limit=RECENT_DELIVERIES
    )
    notice = NOTICES.get(request.query_params.get("done", ""))
    context: dict[str, Any] = {
        "trigger": row,
        "controls": controls_of(row),
        "webhook_url": webhook_url(row, settings_of(request).registry.public_base_url),
        "forms": forms,
        "preview": preview,
        "max_preview": MAX_EVENTS,
        "deliveries": deliveries,
        "notice": notice,
    }
    return render(request, "trigger.html", context, status=status, session=operator.session)


def back_to(row: TriggerRow, done: str, anchor: str = "") -> Response:
    return RedirectResponse(f"{PREFIX}/triggers/{row.id}?done={done}{anchor}", status_code=303)


@router.get("")
async def show(request: Request, trigger_id: str, operator: SignedIn) -> Response:
    row = await find_trigger(operator.conn, operator.project_id, trigger_id)
    return await trigger_page(request, operator, row)


@router.post("/pause")
async def pause(request: Request, trigger_id: str, operator: SignedIn) -> Response:
    await checked_form(request, operator)
    service = control_plane_of(request)
    row = await service.set_trigger_status(operator.conn, operator.project_id, trigger_id, "paused")
    return back_to(row, "paused")


@router.post("/resume")
async def resume(request: Request, trigger_id: str, operator: SignedIn) -> Response:
    await checked_form(request, operator)
    service = control_plane_of(request)
    row = await service.set_trigger_status(operator.conn, operator.project_id, trigger_id, "active")
    return back_to(row, "resumed")


@router.post("/edit")
async def edit(request: Request, trigger_id: str, operator: SignedIn) -> Response:
    form = await checked_form(request, operator)
    row = await find_trigger(operator.conn, operator.project_id, trigger_id)
    body, errors = trigger_update(form, controls_of(row))
    try:
        if errors:
            raise Invalid(errors)
        update = parsed(TriggerUpdate, body)
        saved = await control_plane_of(request).update_trigger(
            operator.conn, operator.project_id, row.id, update
        )
    except NotFound:
        raise
    except RegistryError as refused:
        state = FormState(form, edit_errors(list(refused.errors)) or [FieldError("", str(refused))])
        return await trigger_page(
            request, operator, row, forms={"edit": state}, status=refused.status
        )
    return back_to(saved, "saved")


@router.post("/filter-preview")
async def filter_preview(request: Request, trigger_id: str, operator: SignedIn) -> Response:
    """What POST /triggers/{id}/filter-preview answers, shown on the page. The form's filter
    and event types replace the trigger's (blank: none, every type)."""
    form = await checked_form(request, operator)
    row = await find_trigger(operator.conn, operator.project_id, trigger_id)
    controls = controls_of(row)
    overrides = RuleOverrides(
        filter=form.get("filter", "") if "filter" in controls else None,
        event_types=lines(form.get("event_types", "")) if "event_types" in controls else None,
    )
    try:
        last = int(form.get("last", "").strip() or PREVIEW_DEFAULT_LAST)
    except ValueError:
        last = 0
    try:
        window = preview_window(last, None, None)
        result = await preview_filter(
            operator.conn,
            settings_of(request),
            project_id=operator.project_id,
            trigger_id=row.id,
            overrides=overrides,
            window=window,
        )
    except NotFound:
        raise
    except RegistryError as refused:
        state = FormState(form, list(refused.errors) or [FieldError("", str(refused))])
        return await trigger_page(
            request, operator, row, forms={"preview": state}, status=refused.status
        )
    return await trigger_page(
        request, operator, row, forms={"preview": FormState(form)}, preview=result
    )
