"""A trigger's destinations on its console page: add, edit (which may rename) and remove, each a
form POSTed to the control-plane service's destination operations.

A refused form is shown again on the trigger page with the service's messages; its signing
secret, if one was typed, is not sent back to the browser.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ingest.api.dependencies import control_plane_of
from ingest.console.forms import FormState, destination_body, destination_values
from ingest.console.security import PREFIX
from ingest.console.trigger_page import back_to, trigger_page
from ingest.console.web import Operator, SignedIn, checked_form
from ingest.registry.errors import FieldError, NotFound, RegistryError
from ingest.registry.inputs import DestinationIn, DestinationUpdate, parsed
from ingest.registry.store import TriggerRow, find_trigger

router = APIRouter(prefix=PREFIX + "/triggers/{trigger_id}/destinations", include_in_schema=False)


@router.post("")
async def add(request: Request, trigger_id: str, operator: SignedIn) -> Response:
    form = await checked_form(request, operator)
    row = await find_trigger(operator.conn, operator.project_id, trigger_id)
    try:
        given = parsed(DestinationIn, destination_body(form))
        saved, _ = await control_plane_of(request).add_destination(
            operator.conn, operator.project_id, row.id, given
        )
    except NotFound:
        raise
    except RegistryError as refused:
        return await _refused(
            request, operator, row, form_id="dest-new", form=form, refused=refused
        )
    return back_to(saved, "destination-added", "#destinations")


@router.post("/{name}/edit")
async def edit(request: Request, trigger_id: str, name: str, operator: SignedIn) -> Response:
    form = await checked_form(request, operator)
    row = await find_trigger(operator.conn, operator.project_id, trigger_id)
    if row.destination(name) is None:
        raise NotFound("destination")
    try:
        given = parsed(DestinationUpdate, destination_body(form, replacing=True))
        saved, _ = await control_plane_of(request).update_destination(
            operator.conn, operator.project_id, row.id, name, given
        )
    except RegistryError as refused:
        if isinstance(refused, NotFound):
            raise
        return await _refused(
            request, operator, row, form_id=f"dest-{name}", form=form, refused=refused
        )
    return back_to(saved, "destination-saved", "#destinations")


@router.post("/{name}/remove")
async def remove(request: Request, trigger_id: str, name: str, operator: SignedIn) -> Response:
    await checked_form(request, operator)
    row = await find_trigger(operator.conn, operator.project_id, trigger_id)
    try:
        saved = await control_plane_of(request).remove_destination(
            operator.conn, operator.project_id, row.id, name
        )
    except RegistryError as refused:
        if isinstance(refused, NotFound):
            raise
        # The destination's form shows what is stored, with why it stays.
        current = destination_values(row.destination(name))
        return await _refused(
            request, operator, row, form_id=f"dest-{name}", form=current, refused=refused
        )
    return back_to(saved, "destination-removed", "#destinations")


async def _refused(
    request: Request,
    operator: Operator,
    row: TriggerRow,
    *,
    form_id: str,
    form: dict[str, str],
    refused: RegistryError,
) -> Response:
    shown = {key: value for key, value in form.items() if key not in ("signing_secret", "csrf")}
    errors = list(refused.errors) or [FieldError("", str(refused))]
    return await trigger_page(
        request, operator, row, forms={form_id: FormState(shown, errors)}, status=refused.status
    )
