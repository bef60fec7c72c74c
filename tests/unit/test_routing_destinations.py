"""Fan-out: one event, one decision per destination, each with its own filter and transform,
after the trigger's own rules; and the records the handler makes of them."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from kinds.routing import FilterFailed, Routed, Skipped, TransformFailed, compile_routing_trigger
from processors.dedupe import PartitionMarks
from processors.handler import RawEventHandler
from runtime.cel import CelCompileError, CelType, compile
from schemas.topics import DELIVERY_LOG, DESTINATION_HEADER, ROUTED_EVENTS
from schemas.triggers import REPLAY_DESTINATION, Destination, Target, TriggerConfig
from tests.unit.support.handler import BoundedOutput, CompiledTriggers, raw_record, slack_envelope
from tests.unit.support.routing import raw, run_all, trigger

pytestmark = pytest.mark.unit

MESSAGE = {
    "type": "event_callback",
    "event_id": "Ev9",
    "team_id": "T1",
    "event": {"type": "message", "channel": "C1", "user": "U1", "text": "deploy now", "ts": "1.5"},
}
BOT = Destination("bot", Target("http", "https://bot.example.com/in"))
AUDIT = Destination(
    "audit",
    Target("kafka", "audit-log"),
    transform='{"who": event.user_id, "said": event.text}',
)
DEPLOYS = Destination(
    "deploys",
    Target("http", "https://ci.example.com/hook"),
    filter='event.text.startsWith("deploy")',
    transform="event.text",
)


def fanned_out(*destinations: Destination, filter: str | None = None) -> list[object]:
    rules = (
        trigger(destinations=destinations)
        if filter is None
        else trigger(destinations=destinations, filter=filter)
    )
    decisions = run_all(raw(MESSAGE), rules)
    assert isinstance(decisions, list)
    return list(decisions)


def test_each_destination_gets_its_own_routed_event_with_its_target_and_data() -> None:
    bot, audit, deploys = fanned_out(BOT, AUDIT, DEPLOYS)
    assert isinstance(bot, Routed)
    assert isinstance(audit, Routed)
    assert isinstance(deploys, Routed)
    assert [d.event.destination for d in (bot, audit, deploys)] == ["bot", "audit", "deploys"]
    assert (audit.event.targetkind, audit.event.targetref) == ("kafka", "audit-log")
    assert isinstance(bot.event.data, dict)
    assert bot.event.data["slack"]["text"] == "deploy now"
    assert audit.event.data == {"who": "U1", "said": "deploy now"}
    assert deploys.event.data == "deploy now"
    # One conversation, one key, whichever destination.
    assert {bot.event.subject, audit.event.subject, deploys.event.subject} == {"C1:1.5"}
    assert {bot.event.id, audit.event.id, deploys.event.id} == {"Ev9"}


def test_a_destination_filter_skips_only_its_destination() -> None:
    quiet = msgspec.structs.replace(DEPLOYS, filter='event.text.startsWith("rollback")')
    bot, deploys = fanned_out(BOT, quiet)
    assert isinstance(bot, Routed)
    assert deploys == Skipped("Ev9", "C1:1.5", "destination filter returned false", "deploys")


def test_the_trigger_filter_decides_once_for_every_destination() -> None:
    (decision,) = fanned_out(BOT, AUDIT, filter='event.text == "nothing"')
    assert decision == Skipped("Ev9", "C1:1.5", "filter returned false")


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        ('{"n": 1, "text": event.text}', {"n": 1, "text": "deploy now"}),
        ("[event.channel_id, event.user_id]", ["C1", "U1"]),
        ('"said: " + event.text', "said: deploy now"),
    ],
)
def test_a_transform_yields_a_map_a_list_or_a_string(transform: str, expected: object) -> None:
    (decision,) = fanned_out(msgspec.structs.replace(BOT, transform=transform))
    assert isinstance(decision, Routed)
    assert decision.event.data == expected


def test_a_transform_that_fails_at_run_time_fails_only_its_destination() -> None:
    broken = msgspec.structs.replace(AUDIT, transform="{'n': event.nothing_here}")
    wrong_type = Destination("typed", Target("noop"), transform="event.event_time")
    bot, audit, typed = fanned_out(BOT, broken, wrong_type)
    assert isinstance(bot, Routed)
    assert isinstance(audit, TransformFailed)
    assert (audit.destination, audit.error.startswith("transform failed:")) == ("audit", True)
    assert "nothing_here" in audit.error
    # A field typed dyn passes the save-time check; a non-payload result fails at run time.
    assert isinstance(typed, TransformFailed)
    assert "expected a map, list or string result, got null" in typed.error


def test_a_destination_whose_expressions_do_not_compile_names_them() -> None:
    stored = Destination("bad", Target("noop"), filter="event.text ==", transform="1 + 2")
    (filtered,) = fanned_out(stored)
    assert isinstance(filtered, FilterFailed)
    assert "filter of destination 'bad' does not compile" in filtered.error
    (transformed,) = fanned_out(msgspec.structs.replace(stored, filter=None))
    assert isinstance(transformed, TransformFailed)
    assert "transform of destination 'bad' does not compile" in transformed.error


def test_a_replay_to_an_alternate_target_goes_there_once() -> None:
    alternate = Target("http", "https://staging.example.com/hooks")
    copy = msgspec.structs.replace(raw(MESSAGE), replay=True, replay_id="rp1")
    copy = msgspec.structs.replace(copy, replay_target=alternate)
    decisions = run_all(copy, trigger(destinations=(BOT, AUDIT)))
    assert isinstance(decisions, list)
    (decision,) = decisions
    assert isinstance(decision, Routed)
    assert (decision.event.destination, decision.event.targetref) == (
        REPLAY_DESTINATION,
        alternate.ref,
    )


def fan_out_handler(*destinations: Destination) -> RawEventHandler:
    config = TriggerConfig(
        trigger_id="s1",
        project_id="p-unit",
        definition="slack",
        name="s1",
        status="active",
        updated_at=datetime.now(UTC),
        revision=1,
        destinations=destinations,
    )
    view = CompiledTriggers(
        compile_routing_trigger(config, "cel-expr-python", max_collection_items=1000)
    )
    return RawEventHandler(view, "unit", max_correlation_id_bytes=256)


async def test_the_handler_writes_a_routed_record_and_a_step_per_destination(
    marks: PartitionMarks,
) -> None:
    handling = fan_out_handler(
        BOT,
        msgspec.structs.replace(AUDIT, transform="{'n': event.nothing_here}"),
        msgspec.structs.replace(DEPLOYS, filter='event.text == "no"'),
    )
    output = BoundedOutput()
    output.produce(await handling.handle(raw_record("s1", "slack", slack_envelope("hi")), marks))

    assert output.topics() == ["routed-events", "delivery-log", "delivery-log", "delivery-log"]
    routed = output.records[0]
    assert (DESTINATION_HEADER, b"bot") in routed.headers
    assert ROUTED_EVENTS.decode(routed.value).destination == "bot"
    steps = [DELIVERY_LOG.decode(r.value) for r in output.records[1:]]
    assert [(s.destination, s.outcome) for s in steps] == [
        ("bot", "routed"),
        ("audit", "transform_error"),
        ("deploys", "skipped"),
    ]


@pytest.mark.parametrize("source", ["1 + 2", "event.text == 'x'", "duration('1s')"])
def test_a_transform_that_cannot_yield_a_payload_is_refused_when_compiled(source: str) -> None:
    with pytest.raises(CelCompileError, match="expected map, list or string"):
        compile(source, {"event": CelType.MAP}, CelType.PAYLOAD)


async def test_a_transform_result_over_the_record_bound_fails_only_its_destination(
    marks: PartitionMarks,
) -> None:
    copies = Destination("copies", Target("noop"), transform="[event.text, event.text, event.text]")
    handling = fan_out_handler(BOT, copies)
    output = BoundedOutput()
    big = raw_record("s1", "slack", slack_envelope("x" * 1_500_000))
    output.produce(await handling.handle(big, marks))

    assert output.topics() == ["routed-events", "delivery-log", "delivery-log"]
    routed, failed = (DELIVERY_LOG.decode(r.value) for r in output.records[1:])
    assert (routed.destination, routed.outcome) == ("bot", "routed")
    assert (failed.destination, failed.outcome) == ("copies", "transform_error")
    assert (failed.reason or "").startswith("transform result too large: the routed-events")
