"""The handler never returns a record the producer would refuse: a decision whose record is
over the 4 MiB bound is dead-lettered with the reason, dead letters are themselves cut to fit,
and a correlation id over its limit is a `filter_error` that says so."""

from __future__ import annotations

import pytest

from processors.dedupe import PartitionMarks
from processors.handler import RawEventHandler
from schemas.topics import MAX_RECORD_BYTES
from schemas.triggers import DefinitionSlug
from tests.unit.support.handler import (
    PREFIX,
    BoundedOutput,
    CompiledTriggers,
    RawRecord,
    b64_size,
    handler,
    raw_record,
    slack_envelope,
    trigger_config,
)

pytestmark = pytest.mark.unit


async def test_a_routed_record_over_the_bound_is_dead_lettered_with_the_reason(
    marks: PartitionMarks,
) -> None:
    # The routed event carries the text twice (fields and envelope): 2.5 MB in, 5 MB out.
    record = raw_record("s1", "slack", slack_envelope("x" * 2_500_000))
    output = BoundedOutput()
    output.produce(
        await handler(trigger_config("s1", "slack", event_types=["message"])).handle(record, marks)
    )

    assert output.topics() == ["dead-letters", "delivery-log"]
    [letter] = output.dead_letters()
    assert letter.reason == "too_large"
    assert "routed-events record would be" in (letter.error or "")
    [(outcome, reason)] = output.outcomes()
    assert outcome == "dead_lettered"
    assert f"over the {MAX_RECORD_BYTES}-byte record bound" in (reason or "")


async def test_a_dead_letter_of_a_record_near_the_bound_is_cut_to_fit(
    marks: PartitionMarks,
) -> None:
    # Not a raw event at all; its base64 copy alone would be 5.2 MB.
    record = RawRecord(b"\xff" * (MAX_RECORD_BYTES - 100_000))
    output = BoundedOutput()
    output.produce(await handler().handle(record, marks))

    [letter] = output.dead_letters()
    assert letter.reason == "undecodable"
    assert 0 < b64_size(letter.value_b64) < len(record.value or b"")
    assert "value cut to its first" in (letter.error or "")


@pytest.mark.parametrize(
    ("definition", "config", "body"),
    [
        # 16 copies of a 20-character field: 320 bytes.
        ("webhook", {"correlation": "+".join(["event.a"] * 16)}, {"a": "x" * 20}),
        ("slack", {"event_types": ["message"]}, slack_envelope("hi", thread_ts="1" * 300)),
    ],
)
async def test_a_correlation_id_over_its_limit_is_a_filter_error(
    marks: PartitionMarks,
    definition: DefinitionSlug,
    config: dict[str, object],
    body: dict[str, object],
) -> None:
    output = BoundedOutput()
    output.produce(
        await handler(trigger_config("t1", definition, **config)).handle(
            raw_record("t1", definition, body), marks
        )
    )

    [(outcome, reason)] = output.outcomes()
    assert outcome == "filter_error"
    assert "bytes, over the limit of 256 (TRIGGERLINE_PROCESSOR_MAX_CORRELATION_ID_BYTES)" in (
        reason or ""
    )
    assert output.topics() == ["delivery-log"]


async def test_an_event_for_an_unusable_trigger_is_dead_lettered_with_the_reason(
    marks: PartitionMarks,
) -> None:
    view = CompiledTriggers()
    view.unusable_reasons["s1"] = "its config does not compile: boom"
    output = BoundedOutput()
    record = raw_record("s1", "slack", slack_envelope("hi"))
    output.produce(
        await RawEventHandler(view, PREFIX, max_correlation_id_bytes=256).handle(record, marks)
    )

    [letter] = output.dead_letters()
    assert (letter.reason, letter.error) == (
        "trigger_unusable",
        "its config does not compile: boom",
    )
    # The event's journey ends where the letter is.
    assert output.outcomes() == [
        ("dead_lettered", "trigger_unusable: its config does not compile: boom")
    ]
