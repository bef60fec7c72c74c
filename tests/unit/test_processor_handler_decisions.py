"""Each of the handler's decisions as the records it returns: a routed event with its journey
record, a skip, an ignored envelope, an event of a deleted trigger, a duplicate (unless it is
a replay), a filter error, and dead letters for unroutable events and for failures of the
handler itself."""

from __future__ import annotations

import pytest

from kinds.routing import RoutingTrigger
from processors.dedupe import PartitionMarks
from processors.handler import RawEventHandler
from schemas.topics import DELIVERY_LOG, ROUTED_EVENTS
from tests.unit.support.handler import (
    PREFIX,
    BoundedOutput,
    RawRecord,
    handler,
    raw_record,
    slack_envelope,
    trigger_config,
)

pytestmark = pytest.mark.unit

SLACK = trigger_config("s1", "slack", event_types=["message"])


async def decided(
    record: RawRecord, marks: PartitionMarks, handling: RawEventHandler | None = None
) -> BoundedOutput:
    output = BoundedOutput()
    output.produce(await (handling or handler(SLACK)).handle(record, marks))
    return output


async def test_a_matching_event_is_routed_keyed_by_its_correlation_id(
    marks: PartitionMarks,
) -> None:
    output = await decided(raw_record("s1", "slack", slack_envelope("deploy")), marks)

    assert output.topics() == ["routed-events", "delivery-log"]
    routed, logged = output.records
    event = ROUTED_EVENTS.decode(routed.value)
    entry = DELIVERY_LOG.decode(logged.value)
    assert (event.id, event.triggerid, event.type) == ("Ev1", "s1", "slack.message")
    assert routed.key == event.subject.encode()
    assert ("content-type", b"application/cloudevents+json") in routed.headers
    assert (entry.event_id, entry.outcome, entry.correlation_id) == ("Ev1", "routed", event.subject)


async def test_an_event_type_outside_the_allow_list_is_skipped_with_the_reason(
    marks: PartitionMarks,
) -> None:
    reaction = slack_envelope("hi", type="reaction_added")

    output = await decided(raw_record("s1", "slack", reaction), marks)

    assert output.outcomes() == [("skipped", "event_type 'reaction_added' not in [message]")]


async def test_an_envelope_that_is_not_an_event_is_ignored(marks: PartitionMarks) -> None:
    challenge = {"type": "url_verification", "challenge": "c-1"}

    output = await decided(raw_record("s1", "slack", challenge), marks)

    assert output.outcomes() == [("ignored", "envelope type 'url_verification' is not routed")]


async def test_an_event_of_a_deleted_trigger_is_ignored(marks: PartitionMarks) -> None:
    output = await decided(raw_record("gone", "slack", slack_envelope("hi")), marks)

    assert output.outcomes() == [("ignored", "trigger no longer exists")]
    assert output.dead_letters() == []


async def test_a_resent_event_is_a_duplicate_that_names_the_retry(marks: PartitionMarks) -> None:
    first = await decided(raw_record("s1", "slack", slack_envelope("hi")), marks)
    resent = raw_record("s1", "slack", slack_envelope("hi"), {"x-slack-retry-num": "1"})

    again = await decided(resent, marks)

    assert [outcome for outcome, _ in first.outcomes()] == ["routed"]
    assert again.topics() == ["delivery-log"]
    assert again.outcomes() == [("duplicate", "already seen (retry 1)")]


async def test_a_replayed_event_is_routed_again(marks: PartitionMarks) -> None:
    await decided(raw_record("s1", "slack", slack_envelope("hi")), marks)

    replayed = await decided(raw_record("s1", "slack", slack_envelope("hi"), replay=True), marks)

    assert replayed.topics() == ["routed-events", "delivery-log"]
    assert ROUTED_EVENTS.decode(replayed.records[0].value).replay


async def test_a_filter_that_fails_on_the_event_is_a_filter_error(marks: PartitionMarks) -> None:
    config = trigger_config("w1", "webhook", filter="event.a.b == 1")

    output = await decided(raw_record("w1", "webhook", {"a": 1}), marks, handler(config))

    [(outcome, reason)] = output.outcomes()
    assert outcome == "filter_error"
    assert (reason or "").startswith("filter failed: ")


async def test_an_event_the_definition_cannot_read_is_dead_lettered_as_unroutable(
    marks: PartitionMarks,
) -> None:
    cron = trigger_config("c1", "cron", schedule="* * * * *")
    record = raw_record("c1", "cron", {"not": "a tick"})

    output = await decided(record, marks, handler(cron))

    [letter] = output.dead_letters()
    assert (letter.stage, letter.reason, letter.trigger_id) == ("processor", "unroutable", "c1")
    assert (letter.error or "").startswith("body is not a cron tick")
    assert letter.value_b64 is not None
    [(outcome, reason)] = output.outcomes()
    assert outcome == "dead_lettered"
    assert (reason or "").startswith("unroutable: body is not a cron tick")


class FailingLookup:
    """A trigger-config view that fails in a way nothing above it expects."""

    def get(self, trigger_id: str) -> RoutingTrigger | None:
        return None

    async def lookup(self, trigger_id: str) -> RoutingTrigger | None:
        raise RuntimeError("view is broken")

    def unusable(self, trigger_id: str) -> str | None:
        return None


async def test_a_failure_of_the_handler_dead_letters_the_record_instead_of_raising(
    marks: PartitionMarks,
) -> None:
    record = raw_record("s1", "slack", slack_envelope("hi"))
    failing = RawEventHandler(FailingLookup(), PREFIX, max_correlation_id_bytes=256)

    output = await decided(record, marks, failing)

    [letter] = output.dead_letters()
    assert (letter.reason, letter.error) == ("processing_error", "RuntimeError('view is broken')")
    assert (letter.source_topic, letter.source_offset) == (record.topic, record.offset)
    assert output.outcomes() == []
