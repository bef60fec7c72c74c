"""What the events, dead-letters and replays pages read from their filter forms, checked as the
API checks the same fields: each refusal names its field, and the page re-renders with it
(422), never a 500.

Times come from `datetime-local` controls, which carry no zone: they are UTC, as in the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from psycopg import AsyncConnection

from ingest.api.deliveries import NO_CONTROL_CHARACTERS
from ingest.registry.errors import FieldError, NotFound
from ingest.registry.store import TriggerRow, find_trigger, list_triggers

# Triggers offered in a page's trigger choice, oldest first; a project with more types an id.
TRIGGER_CHOICES = 200
# As the API: ids are free text of at most 200 characters without control characters.
MAX_ID_CHARS = 200


@dataclass
class Checked:
    """Fields read from a form, and what was refused."""

    errors: list[FieldError] = field(default_factory=list)

    def refuse(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def text(self, name: str, value: str | None, max_chars: int = MAX_ID_CHARS) -> str | None:
        """Free text such as an event or correlation id; None when blank."""
        value = (value or "").strip()
        if not value:
            return None
        if len(value) > max_chars:
            self.refuse(name, f"at most {max_chars} characters")
            return None
        if not re.fullmatch(NO_CONTROL_CHARACTERS, value):
            self.refuse(name, "must not hold control characters")
            return None
        return value

    def time(self, name: str, value: str | None) -> datetime | None:
        """An ISO 8601 time; without a zone (as `datetime-local` sends it), UTC."""
        value = (value or "").strip()
        if not value:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.refuse(name, "a time such as 2026-03-01T12:00 (UTC)")
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    def choice(self, name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
        value = (value or "").strip()
        if not value:
            return None
        if value not in allowed:
            self.refuse(name, f"one of {', '.join(allowed)}")
            return None
        return value

    def ordered(self, since: datetime | None, until: datetime | None) -> None:
        if since is not None and until is not None and since >= until:
            self.refuse("until", "must be after `since`")

    async def trigger(
        self, conn: AsyncConnection[Any], project_id: str, name: str, value: str | None
    ) -> TriggerRow | None:
        """One of the project's live triggers, by id."""
        value = (value or "").strip()
        if not value:
            return None
        try:
            return await find_trigger(conn, project_id, value)
        except NotFound:
            self.refuse(name, "no such trigger in this project")
            return None


async def trigger_choices(conn: AsyncConnection[Any], project_id: str) -> list[TriggerRow]:
    """The project's triggers to choose from (and to name rows by), oldest first."""
    return await list_triggers(
        conn, project_id, definition=None, status=None, limit=TRIGGER_CHOICES, after=None
    )


def time_field(value: datetime | None) -> str:
    """A time as a `datetime-local` control shows it (UTC, to the second)."""
    if value is None:
        return ""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def query(**fields: str | None) -> str:
    """A query string of the non-empty fields, for links that keep a page's filter."""
    return urlencode({name: value for name, value in fields.items() if value})
