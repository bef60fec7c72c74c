"""An event's payload for its journey page: the raw request body ingest accepted, read back from
the raw-events topic.

The delivery log holds no payload. The raw record is found where replays and filter previews
read history: the trigger's raw-events partition, at the offsets the broker's time index gives
for the event's `received_at` (`ingest.replay.trigger_history.event_received_at`). The read is
bounded in records and in time, so the page keeps its budget: past either bound, or once
retention has removed the record, the page says why there is no payload.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

import orjson

from ingest.replay.trigger_history import (
    EVENT_MAX_SCANNED,
    HistoryUnavailable,
    event_received_at,
    trigger_partition,
)
from runtime.settings import Settings
from schemas.topics import RAW_EVENTS

# The payload's share of the journey page's 200 ms budget.
PAYLOAD_BUDGET_S = 0.15
# Characters of a payload shown; ingest accepts bodies up to 1 MiB.
MAX_SHOWN_CHARS = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Payload:
    """The body as received, pretty-printed when it is JSON or a form, or why it is missing."""

    text: str | None = None
    content_type: str | None = None
    headers: dict[str, str] | None = None
    truncated: bool = False
    missing: str | None = None


async def payload_of(
    settings: Settings, trigger_id: str, event_id: str, received_at: datetime | None
) -> Payload:
    if received_at is None:
        return Payload(missing="the delivery log does not say when ingest received this event")
    topic = RAW_EVENTS.name(settings.topics.prefix)
    try:
        async with asyncio.timeout(PAYLOAD_BUDGET_S):
            async with trigger_partition(settings, trigger_id) as (consumer, tp):
                found = await event_received_at(consumer, tp, trigger_id, event_id, received_at)
    except TimeoutError:
        return Payload(
            missing=f"reading it from {topic} took over {PAYLOAD_BUDGET_S * 1000:.0f} ms;"
            " reload to try again"
        )
    except HistoryUnavailable as exc:
        return Payload(missing=exc.message)
    if found.event is None:
        why = (
            f"not within the {EVENT_MAX_SCANNED} records read from {topic} around its receipt"
            if found.scan_bound_reached
            else f"no longer on {topic} (past its retention)"
        )
        return Payload(missing=why)
    text, truncated = pretty(found.event.body, found.event.content_type)
    return Payload(
        text=text,
        content_type=found.event.content_type,
        headers=found.event.headers,
        truncated=truncated,
    )


def pretty(body: str, content_type: str) -> tuple[str, bool]:
    """JSON indented; a form's fields as a JSON object (a field holding JSON, such as Slack's
    `payload`, decoded too); anything else as it came. Cut at MAX_SHOWN_CHARS."""
    text = body
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    try:
        if kind == FORM_TYPE:
            fields = {name: _maybe_json(value) for name, value in parse_qsl(body)}
            text = orjson.dumps(fields, option=orjson.OPT_INDENT_2).decode()
        else:
            text = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except (orjson.JSONDecodeError, ValueError):
        text = body
    if len(text) > MAX_SHOWN_CHARS:
        return text[:MAX_SHOWN_CHARS], True
    return text, False


def _maybe_json(value: str) -> object:
    if value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value
