"""One raw event's decision as records: routed event, delivery-log record, dead letter.

Both engines call `handle` for every raw record, in partition order, and place what it returns
in the source partition's Kafka transaction. It sends nothing itself; a failure that would
repeat for this one record becomes a dead letter, never an exception that stops the worker.

The delivery log is the per-event record of what happened; logs carry errors and a line per
decision within the log budget (`OutcomeLog`: every decision a person can follow, a count of
the rest).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal, Protocol, get_args

from kinds.base import Ignored, Normalized, UnroutableEvent
from kinds.routing import (
    Decision,
    FilterFailed,
    Routed,
    RoutingTrigger,
    Skipped,
    TransformFailed,
    decide,
    normalize,
    oversized_correlation,
)
from processors.dedupe import PartitionMarks, mark_key
from processors.outputs import Headers, Output, SourceRecord
from processors.record_bound import DEAD_LETTER_VALUE_BYTES, cut, oversized
from processors.spans import ProcessorSpans
from runtime.logging import OutcomeLog
from runtime.metrics import (
    DEAD_LETTERS_WRITTEN,
    PROCESSOR_EVENTS,
    PROCESSOR_EVENTS_IN,
    UNDECODABLE_RECORDS,
)
from runtime.settings import DEFAULT_LOG_EVENT_LINES_PER_S
from schemas.codec import RecordDecodeError, RecordPosition
from schemas.records import DeadLetter, DeliveryLogRecord, Outcome, RawEvent
from schemas.topics import (
    DEAD_LETTERS,
    DELIVERY_LOG,
    DESTINATION_HEADER,
    RAW_EVENTS,
    ROUTED_EVENTS,
)

log = logging.getLogger("triggerline.processors")

CLOUDEVENTS_CONTENT_TYPE = ("content-type", b"application/cloudevents+json")
NO_HEADERS: Headers = []
# Why a raw record was dead-lettered: the letter's reason, and the dead-letter counter's label.
DeadLetterReason = Literal[
    "undecodable", "processing_error", "unroutable", "trigger_unusable", "too_large"
]
FLUSH_EVERY = 1024


class EventCounters:
    """Events read and decided, tallied locally and added to the Prometheus counters every
    FLUSH_EVERY events and whenever the engine asks (it does so every few seconds): a labelled
    counter's `inc` costs about a microsecond, per event and label set."""

    def __init__(self) -> None:
        self._read: dict[str, int] = {}
        self._decided: dict[tuple[str, str], int] = {}
        self._until_flush = FLUSH_EVERY

    def read(self, definition: str) -> None:
        self._read[definition] = self._read.get(definition, 0) + 1
        self._until_flush -= 1
        if not self._until_flush:
            self.flush()

    def decided(self, definition: str, outcome: str) -> None:
        key = (definition, outcome)
        self._decided[key] = self._decided.get(key, 0) + 1

    def flush(self) -> None:
        for definition, count in self._read.items():
            PROCESSOR_EVENTS_IN.labels(definition).inc(count)
        for (definition, outcome), count in self._decided.items():
            PROCESSOR_EVENTS.labels(definition, outcome).inc(count)
        self._read.clear()
        self._decided.clear()
        self._until_flush = FLUSH_EVERY


class TriggerLookup(Protocol):
    """What the handler needs of the trigger-config view (runtime/config_view.py)."""

    def get(self, trigger_id: str) -> RoutingTrigger | None: ...

    async def lookup(self, trigger_id: str) -> RoutingTrigger | None: ...

    def unusable(self, trigger_id: str) -> str | None: ...


class RawEventHandler:
    def __init__(
        self,
        view: TriggerLookup,
        prefix: str,
        *,
        max_correlation_id_bytes: int,
        spans: ProcessorSpans | None = None,
        event_lines_per_s: float = DEFAULT_LOG_EVENT_LINES_PER_S,
    ) -> None:
        self._view = view
        # None while tracing is off: then no event touches a span or a trace header.
        self._spans = spans
        self._max_correlation_id_bytes = max_correlation_id_bytes
        self._routed = ROUTED_EVENTS.name(prefix)
        self._delivery_log = DELIVERY_LOG.name(prefix)
        self._dead_letters = DEAD_LETTERS.name(prefix)
        self._counters = EventCounters()
        self._outcomes = OutcomeLog(log, event_lines_per_s)
        # Every reason is exported from the start: a process's first letter is then an increase.
        for reason in get_args(DeadLetterReason):
            DEAD_LETTERS_WRITTEN.labels(reason)

    def flush_metrics(self) -> None:
        """Adds the events counted since the last flush to the Prometheus counters, and logs
        the decisions left out of the log since its last summary."""
        self._counters.flush()
        self._outcomes.flush()

    async def handle(self, source: SourceRecord, marks: PartitionMarks) -> list[Output]:
        spans = self._spans
        if spans is None:
            return await self._outputs(source, marks)
        with spans.processing(source) as span:
            return spans.named(await self._outputs(source, marks), span)

    async def _outputs(self, source: SourceRecord, marks: PartitionMarks) -> list[Output]:
        try:
            raw, outputs = await self._handle(source, marks)
            problem = oversized(outputs)
            if problem is None:
                return outputs
            return self._too_large(source, raw, problem)
        except Exception as exc:
            # A bug or a record nothing above expected: this record is set aside, the
            # partition moves on.
            position = RecordPosition(source.topic, source.partition, source.offset)
            log.exception("processing failed", extra={"at": str(position), "error": str(exc)})
            self._counters.decided("unknown", "dead_lettered")
            return [self.dead_letter(source, "processing_error", repr(exc), None)]

    async def _handle(
        self, source: SourceRecord, marks: PartitionMarks
    ) -> tuple[RawEvent | None, list[Output]]:
        raw = self._decode(source)
        if isinstance(raw, Output):
            return None, [raw]
        return raw, await self._handle_raw(source, marks, raw)

    async def _handle_raw(
        self, source: SourceRecord, marks: PartitionMarks, raw: RawEvent
    ) -> list[Output]:
        self._counters.read(raw.definition)
        trigger = self._view.get(raw.trigger_id) or await self._view.lookup(raw.trigger_id)
        if trigger is None:
            return self._missing(source, raw)
        try:
            event = normalize(raw, trigger)
        except UnroutableEvent as exc:
            log.warning(
                "unroutable raw event",
                extra={"event_id": raw.id, "trigger_id": raw.trigger_id, "error": str(exc)},
            )
            return self._dead_lettered(source, raw, "unroutable", str(exc))
        if isinstance(event, Ignored):
            return [self._record(raw, event.event_id, "ignored", reason=event.reason)]
        reason = oversized_correlation(event, self._max_correlation_id_bytes)
        if reason is not None:
            return [self._record(raw, event.event_id, "filter_error", reason=reason)]
        # A replay re-drives events on purpose; only live traffic is deduplicated.
        if not raw.replay and marks.seen_before(
            mark_key(raw.trigger_id, event.event_id), source.timestamp
        ):
            return [self._duplicate(raw, event)]
        return self._decided(raw, trigger, event)

    def _missing(self, source: SourceRecord, raw: RawEvent) -> list[Output]:
        unusable = self._view.unusable(raw.trigger_id)
        if unusable is not None:
            # The trigger exists but its config cannot be used here; once it can (a fixed
            # config or key), the dead letter is re-drivable.
            return self._dead_lettered(source, raw, "trigger_unusable", unusable)
        # Deleted after ingest accepted the event: there is no target left to deliver to.
        return [self._record(raw, raw.id, "ignored", reason="trigger no longer exists")]

    def _dead_lettered(
        self, source: SourceRecord, raw: RawEvent, reason: DeadLetterReason, error: str
    ) -> list[Output]:
        """The dead letter, and the journey's record of it (which also counts the decision)."""
        return [
            self.dead_letter(source, reason, error, raw),
            self._record(raw, raw.id, "dead_lettered", reason=f"{reason}: {error}"),
        ]

    def _decode(self, source: SourceRecord) -> RawEvent | Output:
        """The raw event, or the dead letter of a record that is not one."""
        try:
            return RAW_EVENTS.decode(source.value)
        except RecordDecodeError as exc:
            position = RecordPosition(source.topic, source.partition, source.offset)
            problem = str(RecordDecodeError("RawEvent", position, exc.problem))
            self._counters.read("unknown")
            self._counters.decided("unknown", "dead_lettered")
            UNDECODABLE_RECORDS.labels("processor").inc()
            log.error("undecodable raw event", extra={"error": problem})
            return self.dead_letter(source, "undecodable", problem, None)

    def _decided(self, raw: RawEvent, trigger: RoutingTrigger, event: Normalized) -> list[Output]:
        outputs: list[Output] = []
        for decided in decide(raw, trigger, event):
            decision, routed = self._fitted(decided, event)
            if routed is not None:
                outputs.append(routed)
            outputs.append(self._decision_record(raw, decision))
        return outputs

    def _fitted(self, decision: Decision, event: Normalized) -> tuple[Decision, Output | None]:
        """The decision with its routed record, if it makes one that fits the record bound.

        A transform made the record's data when it is not the normalized event's own: a result
        too large fails that destination only. An untransformed event too large for the bound
        is the whole event's problem (`_too_large`).
        """
        if not isinstance(decision, Routed):
            return decision, None
        routed = self._routed_output(decision)
        problem = None if decision.event.data is event.data else oversized([routed])
        if problem is None:
            return decision, routed
        failed = TransformFailed(
            event.event_id,
            event.correlation_id,
            f"transform result too large: {problem}",
            decision.event.destination,
        )
        return failed, None

    def _routed_output(self, decision: Routed) -> Output:
        routed = decision.event
        headers = [CLOUDEVENTS_CONTENT_TYPE, (DESTINATION_HEADER, routed.destination.encode())]
        if self._spans is not None:
            routed = self._spans.routed(routed, headers)
        return Output(self._routed, routed.subject.encode(), ROUTED_EVENTS.encode(routed), headers)

    def _decision_record(self, raw: RawEvent, decision: Decision) -> Output:
        if isinstance(decision, Routed):
            routed = decision.event
            return self._record(
                raw,
                routed.id,
                "routed",
                correlation_id=routed.subject,
                destination=routed.destination,
            )
        outcome: Outcome
        if isinstance(decision, Skipped):
            outcome, reason = "skipped", decision.reason
        elif isinstance(decision, FilterFailed):
            outcome, reason = "filter_error", decision.error
        elif isinstance(decision, TransformFailed):
            outcome, reason = "transform_error", decision.error
        else:
            raise TypeError(f"unexpected decision {decision!r}")
        return self._record(
            raw,
            decision.event_id,
            outcome,
            correlation_id=decision.correlation_id,
            reason=reason,
            destination=decision.destination,
        )

    def _too_large(self, source: SourceRecord, raw: RawEvent | None, problem: str) -> list[Output]:
        log.warning(
            "output record over the record bound; dead-lettered",
            extra={
                "event_id": raw.id if raw else None,
                "trigger_id": raw.trigger_id if raw else None,
                "error": problem,
            },
        )
        if raw is None:
            return [self.dead_letter(source, "too_large", problem, None)]
        # The decision's own records are dropped; the journey says why.
        return self._dead_lettered(source, raw, "too_large", problem)

    def _duplicate(self, raw: RawEvent, event: Normalized) -> Output:
        retry = raw.headers.get("x-slack-retry-num")
        return self._record(
            raw,
            event.event_id,
            "duplicate",
            correlation_id=event.correlation_id,
            reason=f"already seen (retry {retry})" if retry else "already seen",
        )

    def _record(
        self,
        raw: RawEvent,
        event_id: str,
        outcome: Outcome,
        *,
        correlation_id: str | None = None,
        reason: str | None = None,
        destination: str | None = None,
    ) -> Output:
        self._counters.decided(raw.definition, outcome)
        entry = DeliveryLogRecord(
            event_id=event_id,
            trigger_id=raw.trigger_id,
            project_id=raw.project_id,
            stage="processor",
            outcome=outcome,
            at=datetime.now(UTC),
            correlation_id=correlation_id,
            destination=destination,
            reason=None if reason is None else cut(reason),
            replay=raw.replay,
            replay_id=raw.replay_id,
            received_at=raw.received_at,
        )
        self._outcomes.outcome(
            outcome,
            event_id=event_id,
            trigger_id=raw.trigger_id,
            correlation_id=correlation_id,
            destination=destination,
            reason=entry.reason,
        )
        return Output(self._delivery_log, event_id.encode(), DELIVERY_LOG.encode(entry), NO_HEADERS)

    def dead_letter(
        self, source: SourceRecord, reason: DeadLetterReason, error: str, raw: RawEvent | None
    ) -> Output:
        error, value = cut(error), source.value
        if value is not None and len(value) > DEAD_LETTER_VALUE_BYTES:
            error += f" (value cut to its first {DEAD_LETTER_VALUE_BYTES} of {len(value)} bytes)"
            value = value[:DEAD_LETTER_VALUE_BYTES]
        letter = DeadLetter.of(
            "processor",
            reason,
            error,
            source=(source.topic, source.partition, source.offset),
            key=source.key,
            value=value,
            event_id=raw.id if raw else None,
            trigger_id=raw.trigger_id if raw else None,
        )
        # Counted when made: a transaction that aborts and is retried counts its letters again.
        DEAD_LETTERS_WRITTEN.labels(reason).inc()
        return Output(
            self._dead_letters, letter.key.encode(), DEAD_LETTERS.encode(letter), NO_HEADERS
        )
