"""Re-drives dead-lettered deliveries back to the dispatchers.

The dispatchers dead-letter a routed event with its original key and value; re-driving produces
that record to the routed-events topic again, unchanged. Its event id, and so its `webhook-id`,
stays the same, so a receiver that already has it can tell. Letters from other stages, and
records the dispatcher could not decode, cannot be re-driven and are counted as such.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from runtime.kafka import durable_producer, reached, whole_topic_consumer
from runtime.settings import Settings
from schemas.codec import RecordDecodeError, RecordPosition
from schemas.records import DEAD_LETTER, DeadLetter
from schemas.topics import DEAD_LETTERS, ROUTED_EVENTS


@dataclass(frozen=True, slots=True)
class RedriveFilter:
    trigger_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.trigger_id is not None and letter.trigger_id != self.trigger_id:
            return False
        if self.since is not None and letter.failed_at < self.since:
            return False
        return self.until is None or letter.failed_at < self.until


@dataclass
class RedriveSummary:
    scanned: int = 0
    matched: int = 0
    redriven: int = 0
    # Letters that match but hold nothing the dispatchers could deliver, by reason.
    not_redrivable: dict[str, int] = field(default_factory=dict)


async def read_letters(settings: Settings) -> list[DeadLetter]:
    """Every dead letter on the topic now, oldest first per partition."""
    topic = DEAD_LETTERS.name(settings.topic_prefix)
    consumer = await whole_topic_consumer(settings, topic)
    letters: list[DeadLetter] = []
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while not await reached(consumer, ends):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    position = RecordPosition(topic, tp.partition, record.offset)
                    try:
                        letters.append(DEAD_LETTER.decode(record.value, position))
                    except RecordDecodeError:
                        continue
    finally:
        await consumer.stop()
    return letters


async def redrive(
    settings: Settings,
    letters: list[DeadLetter],
    selection: RedriveFilter,
    progress: Callable[[int], None] = lambda _: None,
) -> RedriveSummary:
    """Produce every selected, re-drivable letter's record to routed-events; one per event id."""
    routed = ROUTED_EVENTS.name(settings.topic_prefix)
    summary = RedriveSummary(scanned=len(letters))
    # An event dead-lettered twice (re-driven once already) is re-driven once, from its latest.
    chosen: dict[str, DeadLetter] = {}
    for letter in letters:
        if not selection.matches(letter):
            progress(1)
            continue
        summary.matched += 1
        reason = _not_redrivable(letter, routed)
        if reason is not None:
            summary.not_redrivable[reason] = summary.not_redrivable.get(reason, 0) + 1
            progress(1)
            continue
        chosen[letter.event_id or ""] = letter
    producer = durable_producer(settings)
    await producer.start()
    try:
        for letter in chosen.values():
            key = base64.b64decode(letter.key_b64) if letter.key_b64 else None
            value = base64.b64decode(letter.value_b64 or "")
            await producer.send_and_wait(routed, value, key=key)
            summary.redriven += 1
            progress(1)
    finally:
        await producer.stop()
    progress(summary.matched - summary.redriven - sum(summary.not_redrivable.values()))
    return summary


def _not_redrivable(letter: DeadLetter, routed_topic: str) -> str | None:
    if letter.stage != "dispatcher" or letter.source_topic != routed_topic:
        return f"from the {letter.stage} stage"
    if letter.event_id is None or not letter.value_b64:
        return "undecodable record"
    return None
