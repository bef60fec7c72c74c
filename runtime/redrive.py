"""Reading dead letters, and re-driving them back to the stage that gave up on them: for
`triggerline dead-letters` and the console's dead-letters page.

Every letter carries its record's original key and value. The dispatchers dead-letter a routed
event they could not deliver; re-driving produces it to routed-events again, unchanged. Its
event id, and so its `webhook-id`, stays the same, so a receiver that already has it can tell.
The processors dead-letter a raw event whose processing failed (`processing_error`: a bug, or a
passing failure such as a config view that did not catch up) or whose trigger config they could
not use (`trigger_unusable`: a missing encryption key, say); once that is fixed, re-driving
produces it to raw-events again, where it is processed from the start. Records that could not
be decoded, or that the processors refused for what they are (unroutable, too large), would
fail the same way again: they are counted as not re-drivable, by reason.

Event ids come from senders, so two triggers can share one: letters are told apart by trigger,
event id and (for routed events) destination, and each is re-driven once, from its latest
letter. A routed event goes back with its destination header, as the processors wrote it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from runtime.kafka import durable_producer, whole_topic_consumer
from runtime.settings import Settings
from schemas.codec import RecordDecodeError, RecordPosition
from schemas.records import DeadLetter
from schemas.topics import DEAD_LETTERS, DESTINATION_HEADER, RAW_EVENTS, ROUTED_EVENTS

# The processors' reasons that name a failure of processing or of the deployment, not of the
# record: the same record can succeed once the cause is fixed.
REDRIVABLE_PROCESSOR_REASONS = frozenset({"processing_error", "trigger_unusable"})


@dataclass(frozen=True, slots=True)
class RedriveFilter:
    trigger_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter, trigger_id: str | None) -> bool:
        if self.trigger_id is not None and trigger_id != self.trigger_id:
            return False
        if self.since is not None and letter.failed_at < self.since:
            return False
        return self.until is None or letter.failed_at < self.until


@dataclass(frozen=True, slots=True)
class Redrivable:
    """Where a letter's record goes back to, and which event of which trigger it is."""

    topic: str
    trigger_id: str
    event_id: str
    key: bytes | None
    value: bytes
    # The routed event's destination; None for a raw event, which has all of its trigger's.
    destination: str | None = None

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [] if self.destination is None else [(DESTINATION_HEADER, self.destination.encode())]


@dataclass
class RedriveSummary:
    scanned: int = 0
    matched: int = 0
    redriven: int = 0
    # Letters that match but hold nothing the dispatchers could deliver, by reason.
    not_redrivable: dict[str, int] = field(default_factory=dict)


async def read_letters(
    settings: Settings, keep: Callable[[DeadLetter], bool] | None = None
) -> list[DeadLetter]:
    """Every dead letter on the topic now (that `keep` keeps), oldest first per partition.
    Letters `keep` refuses are dropped as they are read, so memory holds only the kept ones."""
    topic = DEAD_LETTERS.name(settings.topics.prefix)
    consumer = await whole_topic_consumer(settings, topic)
    try:
        partitions = list(consumer.assignment())
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        found = await _letters_between(consumer, topic, starts, ends, keep)
    finally:
        await consumer.stop()
    return [at.letter for at in found]


@dataclass(frozen=True, slots=True)
class LetterAt:
    """A dead letter and its own position on the dead-letters topic, which names it."""

    partition: int
    offset: int
    letter: DeadLetter


@dataclass(frozen=True, slots=True)
class NewestLetters:
    """The letters among the newest records of each partition, newest first."""

    letters: list[LetterAt]
    # Records read: the newest `per_partition` of each partition, or all of a shorter one.
    read: int
    # Records on the topic now (end minus start offsets, transaction markers included).
    on_topic: int


async def newest_letters(settings: Settings, per_partition: int) -> NewestLetters:
    """The dead letters among the newest `per_partition` records of each partition: a bounded
    read, whatever the size of the topic."""
    topic = DEAD_LETTERS.name(settings.topics.prefix)
    consumer = await whole_topic_consumer(settings, topic)
    try:
        partitions = list(consumer.assignment())
        floors = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = {tp: max(floors[tp], ends[tp] - per_partition) for tp in partitions}
        found = await _letters_between(consumer, topic, starts, ends)
    finally:
        await consumer.stop()
    found.sort(key=lambda at: (at.letter.failed_at, at.partition, at.offset), reverse=True)
    return NewestLetters(
        letters=found,
        read=sum(ends[tp] - starts[tp] for tp in partitions),
        on_topic=sum(ends[tp] - floors[tp] for tp in partitions),
    )


async def letter_at(settings: Settings, partition: int, offset: int) -> DeadLetter | None:
    """The letter at one position of the dead-letters topic; None if there is none there
    (outside the partitions, before the retained start, past the end, or undecodable)."""
    topic = DEAD_LETTERS.name(settings.topics.prefix)
    consumer = await whole_topic_consumer(settings, topic)
    try:
        tp = TopicPartition(topic, partition)
        if tp not in consumer.assignment():
            return None
        start = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if not start <= offset < end:
            return None
        found = await _letters_between(consumer, topic, {tp: offset}, {tp: offset + 1})
    finally:
        await consumer.stop()
    return found[0].letter if found and found[0].offset == offset else None


async def _letters_between(
    consumer: AIOKafkaConsumer,
    topic: str,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    keep: Callable[[DeadLetter], bool] | None = None,
) -> list[LetterAt]:
    """The decodable letters at offsets [start, end) of each partition that `keep` keeps."""
    wanted = {tp: end for tp, end in ends.items() if starts[tp] < end}
    for tp in consumer.assignment():
        if tp in wanted:
            consumer.seek(tp, starts[tp])
        else:
            consumer.pause(tp)
    letters: list[LetterAt] = []
    while wanted:
        for tp, records in (await consumer.getmany(*wanted, timeout_ms=500)).items():
            for record in records:
                if record.offset >= wanted.get(tp, 0):
                    break
                position = RecordPosition(topic, tp.partition, record.offset)
                try:
                    letter = DEAD_LETTERS.decode(record.value, position)
                except RecordDecodeError:
                    continue
                if keep is None or keep(letter):
                    letters.append(LetterAt(tp.partition, record.offset, letter))
        for tp in list(wanted):
            # Transaction markers take offsets too, so the position, not the last record's
            # offset, says a partition is done.
            if await consumer.position(tp) >= wanted[tp]:
                del wanted[tp]
                consumer.pause(tp)
    return letters


async def redrive(
    settings: Settings,
    letters: list[DeadLetter],
    selection: RedriveFilter,
    progress: Callable[[int], None] = lambda _: None,
) -> RedriveSummary:
    """Produce every selected, re-drivable letter's record; once per topic, trigger and event."""
    summary = RedriveSummary(scanned=len(letters))
    # An event dead-lettered twice (re-driven once already) is re-driven once, from its latest.
    chosen: dict[tuple[str, str, str, str | None], Redrivable] = {}
    for letter in letters:
        plan = redrivable(letter, settings.topics.prefix)
        trigger_id = plan.trigger_id if isinstance(plan, Redrivable) else letter.trigger_id
        if not selection.matches(letter, trigger_id):
            progress(1)
            continue
        summary.matched += 1
        if not isinstance(plan, Redrivable):
            summary.not_redrivable[plan] = summary.not_redrivable.get(plan, 0) + 1
            progress(1)
            continue
        chosen[(plan.topic, plan.trigger_id, plan.event_id, plan.destination)] = plan
    producer = durable_producer(settings)
    await producer.start()
    try:
        for plan in chosen.values():
            await producer.send_and_wait(plan.topic, plan.value, key=plan.key, headers=plan.headers)
            summary.redriven += 1
            progress(1)
    finally:
        await producer.stop()
    progress(summary.matched - summary.redriven - sum(summary.not_redrivable.values()))
    return summary


def redrivable(letter: DeadLetter, prefix: str) -> Redrivable | str:
    """Where the letter's record goes back to, or why it cannot go back."""
    key = base64.b64decode(letter.key_b64) if letter.key_b64 else None
    value = base64.b64decode(letter.value_b64) if letter.value_b64 else b""
    if letter.stage == "dispatcher" and letter.source_topic == ROUTED_EVENTS.name(prefix):
        return _routed(letter, key, value)
    if letter.stage == "processor" and letter.source_topic == RAW_EVENTS.name(prefix):
        if letter.reason not in REDRIVABLE_PROCESSOR_REASONS:
            return f"from the processor stage: {letter.reason}"
        try:
            # Also refuses a value the processors cut to fit the letter.
            raw = RAW_EVENTS.decode(value)
        except RecordDecodeError:
            return "undecodable record"
        return Redrivable(letter.source_topic, raw.trigger_id, raw.id, key, value)
    return f"from the {letter.stage} stage"


def _routed(letter: DeadLetter, key: bytes | None, value: bytes) -> Redrivable | str:
    if letter.event_id is None or letter.trigger_id is None or not value:
        return "undecodable record"
    try:
        routed = ROUTED_EVENTS.decode(value)
    except RecordDecodeError:
        return "undecodable record"
    return Redrivable(
        letter.source_topic, letter.trigger_id, letter.event_id, key, value, routed.destination
    )


@dataclass(frozen=True, slots=True)
class Owner:
    project_id: str
    trigger_id: str
    # A routed record's destination; None for a raw record (all of its trigger's).
    destination: str | None = None


def owner(letter: DeadLetter, prefix: str) -> Owner | None:
    """The project and trigger whose record the letter holds, read from the record itself
    (routed and raw records both carry them); None for a record that cannot be decoded."""
    value = base64.b64decode(letter.value_b64) if letter.value_b64 else b""
    if not value:
        return None
    try:
        if letter.source_topic == ROUTED_EVENTS.name(prefix):
            routed = ROUTED_EVENTS.decode(value)
            return Owner(routed.projectid, routed.triggerid, routed.destination)
        if letter.source_topic == RAW_EVENTS.name(prefix):
            raw = RAW_EVENTS.decode(value)
            return Owner(raw.project_id, raw.trigger_id)
    except RecordDecodeError:
        return None
    return None
