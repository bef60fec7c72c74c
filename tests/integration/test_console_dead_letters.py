"""The console's dead-letters page on the real app and Kafka: a project sees and re-drives only
its own letters, one at a time or all that match a filter, and each re-driven record is back on
the topic of the stage that gave up on it."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from runtime.kafka import durable_producer
from runtime.redrive import newest_letters
from runtime.settings import Settings
from schemas.records import DeadLetter, RawEvent, RoutedEvent
from schemas.topics import DEAD_LETTERS, DESTINATION_HEADER, RAW_EVENTS, ROUTED_EVENTS
from tests.integration.support.console import (
    assert_console_headers,
    assert_no_inline_code,
    csrf_of,
    key_of,
    sign_in,
)
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger
from tests.integration.support.topic_reader import read_all_records

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
LETTER = re.compile(
    r'id="letter-(\d+)-(\d+)" class="card-title">\s*<a href="/console/events/([^"?]+)\?'
)


def routed_letter(
    settings: Settings, event_id: str, owner: tuple[str, str], destination: str, age_h: float
) -> DeadLetter:
    """A dispatcher's letter for a routed event of (trigger id, project id)."""
    trigger_id, project_id = owner
    value = ROUTED_EVENTS.encode(
        RoutedEvent(
            id=event_id,
            source=f"/triggers/{trigger_id}",
            type="webhook.message",
            subject="conv-1",
            time=NOW,
            data={"text": "<b>hello</b>"},
            triggerid=trigger_id,
            projectid=project_id,
            targetkind="http",
            targetref="https://example.com/hook",
            receivedat=NOW,
            destination=destination,
        )
    )
    return DeadLetter(
        stage="dispatcher",
        reason="gave up after 2 attempts",
        failed_at=NOW - timedelta(hours=age_h),
        source_topic=ROUTED_EVENTS.name(settings.topics.prefix),
        source_partition=0,
        source_offset=1,
        key_b64=base64.b64encode(b"conv-1").decode(),
        value_b64=base64.b64encode(value).decode(),
        event_id=event_id,
        trigger_id=trigger_id,
        error="target answered 503",
        attempts=[
            {"attempt": 1, "at": NOW.isoformat(), "outcome": "retrying", "http_status": 503},
            {"attempt": 2, "at": NOW.isoformat(), "outcome": "failed", "http_status": 503},
        ],
    )


def raw_letter(
    settings: Settings, event_id: str, owner: tuple[str, str], reason: str = "processing_error"
) -> DeadLetter:
    """A processor's letter for a raw event: one whose processing failed, by default."""
    trigger_id, project_id = owner
    value = RAW_EVENTS.encode(
        RawEvent(
            id=event_id,
            trigger_id=trigger_id,
            project_id=project_id,
            definition="webhook",
            received_at=NOW,
            content_type="application/json",
            body="{}",
        )
    )
    return DeadLetter.of(
        "processor",
        reason,
        "RuntimeError('config view behind')",
        source=(RAW_EVENTS.name(settings.topics.prefix), 0, 7),
        key=trigger_id.encode(),
        value=value,
        event_id=event_id,
        trigger_id=trigger_id,
    )


async def write_letters(settings: Settings, letters: list[DeadLetter]) -> None:
    producer = durable_producer(settings)
    await producer.start()
    try:
        for letter in letters:
            await producer.send_and_wait(
                DEAD_LETTERS.name(settings.topics.prefix), DEAD_LETTERS.encode(letter), key=b"k"
            )
        undecodable = b"\xff not a letter's record"
        letter = DeadLetter.of(
            "processor",
            "undecodable",
            "bad bytes",
            source=(RAW_EVENTS.name(settings.topics.prefix), 1, 3),
            key=None,
            value=undecodable,
            event_id=None,
            trigger_id=None,
        )
        await producer.send_and_wait(
            DEAD_LETTERS.name(settings.topics.prefix), DEAD_LETTERS.encode(letter), key=b"k"
        )
    finally:
        await producer.stop()


async def back_on(settings: Settings, spec_name: str) -> list[tuple[str, str | None]]:
    """(event id, destination header) of every record on a topic."""
    topic = (ROUTED_EVENTS if spec_name == "routed" else RAW_EVENTS).name(settings.topics.prefix)
    found = []
    for record in await read_all_records(settings, topic):
        headers = dict(record.headers)
        header = headers.get(DESTINATION_HEADER)
        if spec_name == "routed":
            event_id = ROUTED_EVENTS.decode(record.value).id
        else:
            event_id = RAW_EVENTS.decode(record.value).id
        found.append((event_id, None if header is None else header.decode()))
    return found


async def create_trigger(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> str:
    created = await client.post("/triggers", json=webhook_trigger(name), headers=headers)
    assert created.status_code == 201, created.text
    trigger_id: str = created.json()["id"]
    return trigger_id


def said(page: httpx.Response) -> str:
    """The page's text with its whitespace collapsed."""
    return " ".join(page.text.split())


def listed(page: httpx.Response) -> dict[str, tuple[str, str]]:
    """Event id -> (partition, offset) of each letter on the page."""
    return {event: (partition, offset) for partition, offset, event in LETTER.findall(page.text)}


async def test_dead_letters_are_listed_and_redriven_per_project(settings: Settings) -> None:
    acme_id, acme = await project_with_key(settings, "acme")
    globex_id, globex = await project_with_key(settings, "globex")
    async with control_plane(settings) as client:
        orders = await create_trigger(client, acme, "orders")
        invoices = await create_trigger(client, acme, "invoices")
        theirs = await create_trigger(client, globex, "theirs")
        await write_letters(
            settings,
            [
                routed_letter(settings, "ev-a1", (orders, acme_id), "default", age_h=1),
                routed_letter(settings, "ev-a2", (invoices, acme_id), "audit", age_h=30),
                raw_letter(settings, "ev-a3", (orders, acme_id)),
                raw_letter(settings, "ev-a4", (orders, acme_id), reason="unroutable"),
                routed_letter(settings, "ev-g1", (theirs, globex_id), "default", age_h=1),
            ],
        )
        await sign_in(client, key_of(acme))

        page = await client.get("/console/dead-letters")
        assert page.status_code == 200, page.text
        assert_console_headers(page)
        assert_no_inline_code(page)
        letters = listed(page)
        assert set(letters) == {"ev-a1", "ev-a2", "ev-a3", "ev-a4"}
        assert "ev-g1" not in page.text
        assert "Read the newest 6 of 6 records" in page.text
        assert "gave up after 2 attempts" in page.text
        assert "processing_error" in page.text
        assert "2 attempts</summary>" in page.text
        assert '<td data-label="HTTP status">503</td>' in page.text
        assert "<dd>audit</dd>" in page.text

        by_trigger = await client.get("/console/dead-letters", params={"trigger_id": orders})
        assert set(listed(by_trigger)) == {"ev-a1", "ev-a3", "ev-a4"}
        recent = await client.get(
            "/console/dead-letters",
            params={"since": (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")},
        )
        assert set(listed(recent)) == {"ev-a1", "ev-a3", "ev-a4"}
        bad = await client.get("/console/dead-letters", params={"since": "soon"})
        assert bad.status_code == 422
        assert "<code>since</code>" in bad.text

        # Re-driving one letter, named by its position, puts its record back on routed-events.
        partition, offset = letters["ev-a1"]
        csrf = csrf_of(page)
        forged = await client.post(
            "/console/dead-letters/redrive", data={"partition": partition, "offset": offset}
        )
        assert forged.status_code == 403
        assert await back_on(settings, "routed") == []
        one = await client.post(
            "/console/dead-letters/redrive",
            data={"csrf": csrf, "partition": partition, "offset": offset},
        )
        assert one.status_code == 303, one.text
        summary = await client.get(one.headers["location"])
        assert summary.status_code == 200, summary.text
        assert_console_headers(summary)
        assert_no_inline_code(summary)
        assert f"Re-drove 1 of the dead letter at {partition}/{offset}" in said(summary)
        assert await back_on(settings, "routed") == [("ev-a1", "default")]
        # Reloading the summary shows it again and re-drives nothing.
        assert (await client.get(one.headers["location"])).status_code == 200
        assert await back_on(settings, "routed") == [("ev-a1", "default")]

        # Another project's letter is not found, nor is a position holding none.
        newest = await newest_letters(settings, 100)
        theirs_at = next(at for at in newest.letters if at.letter.event_id == "ev-g1")
        for position in ((theirs_at.partition, theirs_at.offset), (partition, 999), (9, 0)):
            missing = await client.post(
                "/console/dead-letters/redrive",
                data={"csrf": csrf, "partition": position[0], "offset": position[1]},
            )
            assert missing.status_code == 404, position
        malformed = await client.post(
            "/console/dead-letters/redrive", data={"csrf": csrf, "partition": "x", "offset": "-1"}
        )
        assert malformed.status_code == 422
        assert "partition" in malformed.text
        assert "offset" in malformed.text

        # All that match a filter: the invoices trigger's one letter, with its destination.
        matching = await client.post(
            "/console/dead-letters/redrive-all",
            data={"csrf": csrf, "trigger_id": invoices, "since": "", "until": ""},
        )
        assert matching.status_code == 303, matching.text
        matching = await client.get(matching.headers["location"])
        assert "4 read, 1 matched, 1 sent back" in said(matching)
        assert await back_on(settings, "routed") == [("ev-a1", "default"), ("ev-a2", "audit")]

        # All of the project's: routed events to routed-events, the raw one to raw-events;
        # never another project's.
        everything = await client.post(
            "/console/dead-letters/redrive-all",
            data={"csrf": csrf, "trigger_id": "", "since": "", "until": ""},
        )
        assert everything.status_code == 303, everything.text
        everything = await client.get(everything.headers["location"])
        assert "undecodable" not in everything.text
        assert "4 read, 4 matched, 3 sent back" in said(everything)
        assert "from the processor stage: unroutable: 1" in said(everything)
        routed = await back_on(settings, "routed")
        assert sorted(routed) == [
            ("ev-a1", "default"),
            ("ev-a1", "default"),
            ("ev-a2", "audit"),
            ("ev-a2", "audit"),
        ]
        assert await back_on(settings, "raw") == [("ev-a3", None)]

        foreign = await client.post(
            "/console/dead-letters/redrive-all", data={"csrf": csrf, "trigger_id": theirs}
        )
        assert foreign.status_code == 422
        assert "no such trigger in this project" in foreign.text
