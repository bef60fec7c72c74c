"""Dead letters: `GET /console/dead-letters`, and re-driving one or all that match a filter.

Letters live on the dead-letters topic only, so the list reads it per request, bounded: the
newest LETTERS_READ_PER_PARTITION records of each partition, of which the project's newest
LETTERS_SHOWN are listed, with a notice saying how much of the topic that was. A letter belongs
to the project whose record it holds (routed and raw records name their project and trigger);
letters whose record cannot be decoded name no project and are left to `triggerline
dead-letters`. A letter is named by its own position on the topic (partition, offset).

Re-driving goes through `runtime.redrive`, as `triggerline dead-letters redrive` does: "redrive
all" reads the whole topic, keeping only the project's letters that match the filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from ingest.api.dependencies import settings_of
from ingest.console.filters import Checked, time_field, trigger_choices
from ingest.console.security import PREFIX
from ingest.console.web import Operator, SignedIn, checked_form, render
from runtime.redrive import (
    Owner,
    RedriveFilter,
    RedriveSummary,
    letter_at,
    newest_letters,
    owner,
    read_letters,
    redrive,
)
from runtime.settings import Settings
from schemas.records import DeadLetter

router = APIRouter(prefix=PREFIX, include_in_schema=False)
LETTERS_READ_PER_PARTITION = 500
LETTERS_SHOWN = 100
Field = Annotated[str, Query(max_length=400)]
Count = Annotated[int, Query(ge=0)]
# Reasons a summary lists as not re-drivable; the stages give a handful.
MAX_REASONS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class LetterView:
    partition: int
    offset: int
    letter: DeadLetter
    owner: Owner


def _mine(settings: Settings, project_id: str) -> Any:
    prefix = settings.topics.prefix

    def keep(letter: DeadLetter) -> bool:
        found = owner(letter, prefix)
        return found is not None and found.project_id == project_id

    return keep


async def _filter(
    operator: Operator, trigger_id: str | None, since: str | None, until: str | None
) -> tuple[RedriveFilter, dict[str, str], Checked]:
    checked = Checked()
    trigger = await checked.trigger(operator.conn, operator.project_id, "trigger_id", trigger_id)
    selection = RedriveFilter(
        trigger.id if trigger else None,
        checked.time("since", since),
        checked.time("until", until),
    )
    checked.ordered(selection.since, selection.until)
    form = {
        "trigger_id": selection.trigger_id or "",
        "since": time_field(selection.since),
        "until": time_field(selection.until),
    }
    return selection, form, checked


@router.get("/dead-letters")
async def dead_letters(
    request: Request,
    operator: SignedIn,
    trigger_id: Field = "",
    since: Field = "",
    until: Field = "",
) -> Response:
    settings = settings_of(request)
    selection, form, checked = await _filter(operator, trigger_id, since, until)
    triggers = await trigger_choices(operator.conn, operator.project_id)
    context: dict[str, Any] = {
        "form": form,
        "triggers": triggers,
        "names": {t.id: t.name for t in triggers},
        "errors": checked.errors,
        "letters": [],
        "more": False,
        "newest": None,
        "shown_limit": LETTERS_SHOWN,
    }
    if checked.errors:
        return render(request, "dead_letters.html", context, status=422, session=operator.session)
    newest = await newest_letters(settings, LETTERS_READ_PER_PARTITION)
    views = []
    for at in newest.letters:
        found = owner(at.letter, settings.topics.prefix)
        if found is None or found.project_id != operator.project_id:
            continue
        if selection.matches(at.letter, found.trigger_id):
            views.append(LetterView(at.partition, at.offset, at.letter, found))
    context["letters"] = views[:LETTERS_SHOWN]
    context["more"] = len(views) > LETTERS_SHOWN
    context["newest"] = newest
    return render(request, "dead_letters.html", context, session=operator.session)


@router.post("/dead-letters/redrive")
async def redrive_one(request: Request, operator: SignedIn) -> Response:
    """Re-drive the letter at one position of the topic, if it is the project's."""
    form = await checked_form(request, operator)
    settings = settings_of(request)
    checked = Checked()
    partition = _position(checked, "partition", form.get("partition"))
    offset = _position(checked, "offset", form.get("offset"))
    if checked.errors or partition is None or offset is None:
        return render(
            request,
            "error.html",
            {"status": 422, "message": "; ".join(f"{e.path}: {e.message}" for e in checked.errors)},
            status=422,
            session=operator.session,
        )
    letter = await letter_at(settings, partition, offset)
    if letter is None or not _mine(settings, operator.project_id)(letter):
        return render(
            request,
            "error.html",
            {"status": 404, "message": f"no dead letter of this project at {partition}/{offset}"},
            status=404,
            session=operator.session,
        )
    summary = await redrive(settings, [letter], RedriveFilter())
    return _redirect_to_summary(summary, letter=f"{partition}/{offset}")


@router.post("/dead-letters/redrive-all")
async def redrive_matching(request: Request, operator: SignedIn) -> Response:
    """Re-drive every letter of the project that matches the filter, from the whole topic."""
    form = await checked_form(request, operator)
    settings = settings_of(request)
    selection, shown, checked = await _filter(
        operator, form.get("trigger_id"), form.get("since"), form.get("until")
    )
    if checked.errors:
        return render(
            request,
            "error.html",
            {"status": 422, "message": "; ".join(f"{e.path}: {e.message}" for e in checked.errors)},
            status=422,
            session=operator.session,
        )
    letters = await read_letters(settings, _mine(settings, operator.project_id))
    summary = await redrive(settings, letters, selection)
    return _redirect_to_summary(summary, **shown)


def _redirect_to_summary(summary: RedriveSummary, **shown: str) -> Response:
    """After re-driving, the summary's page (303): reloading it shows the summary again and
    re-drives nothing."""
    fields = [
        ("scanned", str(summary.scanned)),
        ("matched", str(summary.matched)),
        ("redriven", str(summary.redriven)),
        *((name, value) for name, value in shown.items() if value),
        *(("refused", f"{count}:{reason}") for reason, count in summary.not_redrivable.items()),
    ]
    return RedirectResponse(f"{PREFIX}/dead-letters/redriven?{urlencode(fields)}", 303)


@router.get("/dead-letters/redriven")
async def redriven(
    request: Request,
    operator: SignedIn,
    *,
    scanned: Count = 0,
    matched: Count = 0,
    redriven: Count = 0,
    letter: Field = "",
    trigger_id: Field = "",
    since: Field = "",
    until: Field = "",
) -> Response:
    """What a re-drive did, as its POST reported it."""
    refused: dict[str, int] = {}
    for item in request.query_params.getlist("refused")[:MAX_REASONS_SHOWN]:
        count, _, reason = item.partition(":")
        if count.isdigit():
            refused[reason[:200]] = int(count)
    summary = RedriveSummary(scanned, matched, redriven, refused)
    shown = {"trigger_id": trigger_id, "since": since, "until": until}
    return render(
        request,
        "redrive_result.html",
        {
            "summary": summary,
            "what": f"the dead letter at {letter}" if letter else "the project's dead letters",
            "filter": None if letter else shown,
        },
        session=operator.session,
    )


def _position(checked: Checked, name: str, value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        number = -1
    if number < 0:
        checked.refuse(name, "a topic position: a whole number, 0 or more")
        return None
    return number
