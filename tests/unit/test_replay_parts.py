"""A replay's selection, pacing, routing of copies and progress line, without a broker."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from deploy.replay_progress import ProgressBar
from ingest.replay.raw_history import HistoricRecord
from ingest.replay.runner import Pacer
from ingest.replay.selection import Selector
from kinds.routing import Routed
from schemas.triggers import DEFAULT_DESTINATION, REPLAY_DESTINATION, Target
from tests.unit.support.routing import raw, run, trigger

pytestmark = pytest.mark.unit

MESSAGE = {
    "type": "event_callback",
    "event_id": "Ev9",
    "event": {"type": "message", "channel": "C1", "ts": "1.5", "text": "hello"},
}


def record(**changes: object) -> HistoricRecord:
    event = msgspec.structs.replace(raw(MESSAGE), **changes)
    return HistoricRecord(partition=0, offset=7, key=b"t1", value=b"", event=event)


def test_the_selector_keeps_to_its_project_triggers_and_event_ids() -> None:
    assert Selector("p1", None, None).selects(record())
    assert not Selector("p2", None, None).selects(record())
    assert Selector("p1", ["t1"], None).selects(record())
    assert not Selector("p1", ["t2"], None).selects(record())
    # The sender's event id (Slack's event_id) or the raw record's own id.
    assert Selector("p1", None, ["Ev9"]).selects(record())
    assert Selector("p1", None, ["r1"]).selects(record())
    assert not Selector("p1", None, ["Ev8"]).selects(record())


def test_the_selector_never_takes_a_copy_or_an_undecodable_record() -> None:
    assert not Selector("p1", None, None).selects(record(replay=True, replay_id="x"))
    undecodable = HistoricRecord(partition=0, offset=1, key=None, value=b"\x00", event=None)
    assert not Selector("p1", None, None).selects(undecodable)
    broken = record(body="{not json")
    assert Selector("p1", None, None).selects(broken)
    assert not Selector("p1", None, ["Ev9"]).selects(broken)


def test_a_copy_goes_to_the_alternate_target_with_its_replay_id() -> None:
    alternate = Target(kind="http", ref="https://staging.example.com/hooks")
    copy = raw(MESSAGE)
    copy = msgspec.structs.replace(copy, replay=True, replay_id="rp1", replay_target=alternate)
    decision = run(copy, trigger())
    assert isinstance(decision, Routed)
    routed = decision.event
    assert (routed.id, routed.replay, routed.replayid) == ("Ev9", True, "rp1")
    assert (routed.targetkind, routed.targetref) == ("http", alternate.ref)
    assert routed.destination == REPLAY_DESTINATION
    live = run(raw(MESSAGE), trigger())
    assert isinstance(live, Routed)
    assert (live.event.replay, live.event.replayid) == (False, None)
    assert (live.event.destination, live.event.targetkind) == (DEFAULT_DESTINATION, "noop")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_holds_the_rate_and_allows_a_short_burst_after_idling() -> None:
    clock = Clock()
    pacer = Pacer(rate_per_s=100, clock=clock.monotonic, sleep=clock.sleep)

    async def send(count: int) -> None:
        for _ in range(count):
            await pacer.wait()

    asyncio.run(send(1000))
    # 1,000 events at 100/s take ten seconds, never more than one interval's sleep at a time.
    assert clock.now - 100.0 == pytest.approx(10.0, abs=1e-6)
    assert max(clock.slept) == pytest.approx(0.01)
    clock.now += 60.0
    clock.slept.clear()
    asyncio.run(send(10))
    # After a minute idle, a tenth of a second's worth (ten events) goes without waiting.
    assert clock.slept == []
    asyncio.run(send(1))
    assert clock.slept == [pytest.approx(0.01)]


def test_the_progress_line_shows_share_rate_and_time_left() -> None:
    bar = ProgressBar()
    bar.update(to_scan=0, scanned=0, selected=0)
    line = bar.line(to_scan=10_000, scanned=2_500, selected=2_000, elapsed=2.0)
    assert "25%" in line
    assert "2,500/10,000 read, 2,000 sent" in line
    assert "1,000 events/s" in line
    assert "ETA 0:06" in line
