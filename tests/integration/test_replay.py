"""Replays on the real pipeline: ingest (with its replay worker), processors, dispatchers and
the delivery-log sink, on real Kafka and PostgreSQL, delivering to real HTTP targets."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from runtime.settings import Settings
from schemas.topics import RAW_EVENTS
from tests.integration.support.cli import triggerline
from tests.integration.support.control_plane import project_with_key, webhook_trigger
from tests.integration.support.dispatch_harness import SIGNING_SECRET, target_server
from tests.integration.support.pipeline import Pipeline, running_pipeline
from tests.integration.support.polling import eventually
from tests.integration.support.stages import stage_env
from tests.integration.support.topic_reader import read_all

pytestmark = pytest.mark.integration


@pytest.fixture
def private_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatchers may deliver to the loopback targets (inherited by the stages)."""
    monkeypatch.setenv("TRIGGERLINE_DISPATCHER_ALLOW_PRIVATE_TARGETS", "true")


@asynccontextmanager
async def replay_pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    # A short lease, so that ingest's worker resumes a replay whose runner was killed soon.
    quick = settings.override(replay__lease_s=5, replay__poll_interval_s=0.5)
    async with running_pipeline(quick) as pipeline:
        yield pipeline


async def past_this_millisecond() -> datetime:
    """Now, once the clock has moved on to the next millisecond: records stamped before the
    call are then strictly before the returned moment, at Kafka's millisecond precision."""
    # Not a wait for something to happen: two milliseconds of clock between the records
    # before and the boundary, which Kafka's timestamps (whole milliseconds) can tell apart.
    await asyncio.sleep(0.002)
    return datetime.now(UTC)


async def send_events(pipeline: Pipeline, trigger_id: str, seqs: range) -> list[str]:
    """Posts one signed event per sequence number; their webhook-ids, once all are delivered."""
    ids = []
    for seq in seqs:
        msg_id = f"msg_{uuid.uuid4().hex}"
        body = orjson.dumps({"seq": seq, "kind": "even" if seq % 2 == 0 else "odd"})
        accepted = await pipeline.post_signed(trigger_id, body, msg_id)
        assert accepted.status_code == 200, accepted.text
        ids.append(msg_id)
    for msg_id in ids:
        await pipeline.log.outcome(msg_id, "dispatcher", "delivered")
    return ids


async def http_trigger(pipeline: Pipeline, name: str, url: str, **fields: Any) -> str:
    target = {"kind": "http", "ref": url, "signing_secret": SIGNING_SECRET}
    return await pipeline.create_trigger(webhook_trigger(name, target=target, **fields))


async def replay(pipeline: Pipeline, body: dict[str, Any]) -> dict[str, Any]:
    response = await pipeline.client.post("/replays", json=body, headers=pipeline.auth)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


async def settled(pipeline: Pipeline, replay_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        response = await pipeline.client.get(f"/replays/{replay_id}", headers=pipeline.auth)
        assert response.status_code == 200, response.text
        shown: dict[str, Any] = response.json()
        return shown if shown["settled"] else None

    return await eventually(check, timeout_s=90, interval_s=0.5)


async def copies_on_raw_topic(settings: Settings, replay_id: str) -> Counter[str]:
    """How many copies of each raw event the replay left on the raw topic (committed ones)."""
    copies: Counter[str] = Counter()
    for _, value in await read_all(settings, RAW_EVENTS.name(settings.topics.prefix)):
        raw = RAW_EVENTS.decode(value)
        if raw.replay_id == replay_id:
            copies[raw.headers["webhook-id"]] += 1
    return copies


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def test_a_replay_of_a_range_sends_exactly_its_events_again_marked_as_replays(
    settings: Settings, private_targets: None
) -> None:
    async with (
        target_server() as own,
        target_server() as alternate,
        replay_pipeline(settings) as pipeline,
    ):
        trigger_id = await http_trigger(
            pipeline, "orders", own.url("/ok"), config={"filter": "event.seq >= 0"}
        )
        other_id = await http_trigger(pipeline, "others", own.url("/ok"))
        await send_events(pipeline, trigger_id, range(3))
        since = await past_this_millisecond()
        inside = await send_events(pipeline, trigger_id, range(3, 9))
        await send_events(pipeline, other_id, range(100, 102))
        until = await past_this_millisecond()
        await send_events(pipeline, trigger_id, range(9, 11))
        delivered_before = len(own.received)

        selection = {"from": iso(since), "to": iso(until), "trigger_ids": [trigger_id]}
        dry = await replay(pipeline, {**selection, "dry_run": True})
        assert (dry["selected"], dry["routed"], dry["skipped"], dry["failed"]) == (6, 6, 0, 0)
        assert [t["trigger_id"] for t in dry["triggers"]] == [trigger_id]
        # A different filter, over the same events: what it would have routed, and why not.
        new_filter = 'event.kind == "even" && event.seq < 8'
        what_if = await replay(pipeline, {**selection, "dry_run": True, "filter": new_filter})
        assert (what_if["routed"], what_if["skipped"]) == (2, 4)
        assert what_if["triggers"][0]["skipped_by_reason"] == {
            'clause 1 of 2 (event.kind == "even") returned false': 3,
            "clause 2 of 2 (event.seq < 8) returned false": 1,
        }
        assert len(own.received) == delivered_before, "a dry run sent nothing"

        started = await replay(
            pipeline, {**selection, "target": {"kind": "http", "ref": alternate.url("/ok")}}
        )
        assert started["state"] in ("pending", "running")
        assert started["created_by"].startswith("api key tl_")
        done = await settled(pipeline, started["id"])
        # Both steps of every replayed event, as the delivery log carries them.
        entries = await pipeline.log.until(
            lambda entries: sum(e.replay_id == started["id"] for e in entries) >= 2 * len(inside)
        )

    counts = done["counts"]
    assert done["state"] == "finished"
    assert (counts["selected"], counts["routed"], counts["delivered"]) == (6, 6, 6)
    assert (counts["skipped"], counts["failed"], counts["in_flight"]) == (0, 0, 0)
    # The dry run's figures are the real run's.
    assert (dry["selected"], dry["routed"], dry["skipped"], dry["failed"]) == (
        counts["selected"],
        counts["routed"],
        counts["skipped"],
        counts["failed"],
    )
    # Exactly the events of the range, to the alternate target only, each once, under its own
    # webhook-id, marked in a header and in the CloudEvent.
    assert len(own.received) == delivered_before
    assert sorted(r.webhook_id for r in alternate.received) == sorted(inside)
    assert alternate.bad_signatures == 0
    for received in alternate.received:
        assert received.replay_id == started["id"]
        event = orjson.loads(received.body)
        assert (event["replay"], event["replayid"]) == (True, started["id"])
    # The delivery log tells the replayed journey from the original one.
    replayed = [e for e in entries if e.replay_id == started["id"]]
    assert {(e.event_id, e.stage, e.outcome) for e in replayed} == {
        (event_id, stage, outcome)
        for event_id in inside
        for stage, outcome in (("processor", "routed"), ("dispatcher", "delivered"))
    }
    assert all(e.replay for e in replayed)


async def test_a_killed_replay_resumes_without_sending_anything_twice(
    settings: Settings, private_targets: None
) -> None:
    async with target_server() as own, replay_pipeline(settings) as pipeline:
        trigger_id = await http_trigger(pipeline, "slowly", own.url("/ok"))
        since = await past_this_millisecond()
        sent = await send_events(pipeline, trigger_id, range(40))
        until = await past_this_millisecond()
        delivered_before = len(own.received)
        project = "tenant"
        env = {**stage_env(pipeline.settings), "TRIGGERLINE_REPLAY_TRANSACTION_EVENTS": "3"}
        runner = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from deploy.cli import main; main()",
            *("replay", "start", "--project", project, "--from", iso(since)),
            *("--to", iso(until), "--trigger", trigger_id, "--rate", "8", "--json"),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            listed = await eventually(lambda: running_replay(pipeline, minimum_sent=9), 60)
        finally:
            runner.send_signal(signal.SIGKILL)
            await runner.wait()
        sent_when_killed = listed["counts"]["selected"]
        assert sent_when_killed < len(sent), "killed before the end"
        # Ingest's replay worker takes over once the killed runner's lease runs out.
        done = await settled(pipeline, listed["id"])
        copies = await copies_on_raw_topic(pipeline.settings, listed["id"])

    assert done["state"] == "finished"
    assert done["counts"]["selected"] == len(sent)
    assert done["counts"]["delivered"] == len(sent)
    assert copies == Counter(dict.fromkeys(sent, 1)), "each event copied exactly once"
    replayed = Counter(r.webhook_id for r in own.received[delivered_before:])
    assert replayed == Counter(dict.fromkeys(sent, 1))


async def running_replay(pipeline: Pipeline, minimum_sent: int) -> dict[str, Any] | None:
    response = await pipeline.client.get("/replays", headers=pipeline.auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    if items and items[0]["state"] == "running" and items[0]["counts"]["selected"] >= minimum_sent:
        return items[0]
    return None


async def test_replays_are_project_scoped_and_bad_requests_are_422(
    settings: Settings, private_targets: None
) -> None:
    async with replay_pipeline(settings) as pipeline:
        now = datetime.now(UTC)
        bad = {
            "from": iso(now),
            "to": "2020-01-01T00:00:00+00:00",
            "trigger_ids": [str(uuid.uuid4())],
            "filter": "event.x ==",
            "rate_per_s": 1e9,
        }
        response = await pipeline.client.post("/replays", json=bad, headers=pipeline.auth)
        assert response.status_code == 422, response.text
        paths = {e["path"] for e in response.json()["errors"]}
        assert paths >= {"from", "trigger_ids[0]", "filter", "rate_per_s"}
        naive = {"from": "2026-01-01T00:00:00"}
        response = await pipeline.client.post("/replays", json=naive, headers=pipeline.auth)
        assert response.status_code == 422, response.text
        bad_filter = {
            "from": "2026-01-01T00:00:00Z",
            "dry_run": True,
            "trigger_ids": [pipeline.ordinary_id],
            "filter": "event.x ==",
        }
        response = await pipeline.client.post("/replays", json=bad_filter, headers=pipeline.auth)
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["path"] == "filter"
        assert error["message"].startswith("line 1, column 11:")
        missing = await pipeline.client.get(f"/replays/{uuid.uuid4()}", headers=pipeline.auth)
        assert missing.status_code == 404

        mine = await replay(pipeline, {"from": iso(now), "trigger_ids": [pipeline.ordinary_id]})
        _, stranger = await project_with_key(pipeline.settings, "stranger")
        client = pipeline.client
        for response in (
            await client.get(f"/replays/{mine['id']}", headers=stranger),
            await client.post(f"/replays/{mine['id']}/cancel", headers=stranger),
        ):
            assert response.status_code == 404, response.text
        theirs = await client.get("/replays", headers=stranger)
        assert theirs.json()["items"] == []
        # Another project's trigger cannot be named either.
        their_trigger = {"from": iso(now), "trigger_ids": [pipeline.ordinary_id]}
        response = await client.post("/replays", json=their_trigger, headers=stranger)
        assert response.status_code == 422, response.text
        ours = await client.get("/replays", headers=pipeline.auth)
        assert [r["id"] for r in ours.json()["items"]] == [mine["id"]]


async def test_a_cancelled_replay_stops_and_what_it_sent_stays_delivered(
    settings: Settings, private_targets: None
) -> None:
    async with target_server() as own, replay_pipeline(settings) as pipeline:
        trigger_id = await http_trigger(pipeline, "cancelled", own.url("/ok"))
        since = await past_this_millisecond()
        sent = await send_events(pipeline, trigger_id, range(30))
        delivered_before = len(own.received)
        started = await replay(
            pipeline, {"from": iso(since), "trigger_ids": [trigger_id], "rate_per_s": 5}
        )
        await eventually(lambda: running_replay(pipeline, minimum_sent=3), 60)
        cancel = await pipeline.client.post(
            f"/replays/{started['id']}/cancel", headers=pipeline.auth
        )
        assert cancel.status_code == 200, cancel.text
        assert cancel.json()["cancel_requested"] is True
        done = await settled(pipeline, started["id"])
        again = await pipeline.client.post(
            f"/replays/{started['id']}/cancel", headers=pipeline.auth
        )
        copies = await copies_on_raw_topic(pipeline.settings, started["id"])

    assert done["state"] == "cancelled"
    selected = done["counts"]["selected"]
    assert 3 <= selected < len(sent)
    assert again.status_code == 409
    # What it sent before it stopped is exactly what was copied, and was delivered once.
    assert sum(copies.values()) == selected
    assert set(copies.values()) == {1}
    assert Counter(r.webhook_id for r in own.received[delivered_before:]) == copies


async def test_the_command_shows_progress_and_a_summary(
    settings: Settings, private_targets: None
) -> None:
    async with (
        target_server() as own,
        target_server() as alternate,
        replay_pipeline(settings) as pipeline,
    ):
        trigger_id = await http_trigger(pipeline, "by-hand", own.url("/ok"))
        since = await past_this_millisecond()
        sent = await send_events(pipeline, trigger_id, range(4))
        selection = ("--project", "tenant", "--from", iso(since), "--trigger", trigger_id)
        dry = await triggerline(pipeline.settings, "replay", "start", *selection, "--dry-run")
        run = await triggerline(
            pipeline.settings,
            *("replay", "start", *selection, "--target-url", alternate.url("/ok")),
        )
        listed = await triggerline(pipeline.settings, "replay", "list", "--project", "tenant")

    assert dry.code == 0, dry.stderr
    assert "selected 4, would be routed 4, skipped 0, failed 0" in dry.stdout
    assert run.code == 0, run.stderr
    assert "100%" in run.stderr
    assert "4/4 read, 4 sent" in run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].endswith(": finished")
    figures = dict(line.split() for line in lines[1:])
    assert figures == {
        "selected": "4",
        "routed": "4",
        "skipped": "0",
        "delivered": "4",
        "failed": "0",
    }
    assert sorted(r.webhook_id for r in alternate.received) == sorted(sent)
    assert "finished" in listed.stdout
    assert "by cli " in listed.stdout
