"""The topic catalogue: every Triggerline topic is declared here and nowhere else.

Other modules refer to a topic through its spec, never by spelling its name, so that the prefix
(one per deployment or per test) and the layout stay in one place. A topic whose values are
records also carries their codec: `RAW_EVENTS.name(prefix)`, `RAW_EVENTS.encode(event)` and
`RAW_EVENTS.decode(raw, position)` all go through the one object.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Generic, Literal

from schemas.codec import R, RecordCodec, RecordPosition
from schemas.records import DeadLetter, DeliveryLogRecord, RawEvent, RoutedEvent
from schemas.ticks import CronProgress
from schemas.triggers import TriggerConfig

HOUR_MS = 60 * 60 * 1000
DAY_MS = 24 * HOUR_MS

CleanupPolicy = Literal["delete", "compact"]

# Records that carry a webhook body: the body (up to ingest's 1 MiB limit) is stored as a JSON
# string, where escaping can double it, and later stages wrap it once more. Producers are built
# with the same bound (runtime/kafka.py), so one number governs the whole path.
MAX_RECORD_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    suffix: str
    partitions: int
    # None keeps records forever (compacted topics keep the latest value per key).
    retention_ms: int | None
    key_format: str
    value_format: str
    description: str
    cleanup_policy: CleanupPolicy = "delete"
    max_message_bytes: int = MAX_RECORD_BYTES
    # How soon a segment is closed, so that time-based retention can delete it; None keeps the
    # broker's default (a week).
    segment_ms: int | None = None
    # Replicas that must hold a record before an acks=all produce succeeds. It is a property
    # of the deployment (its replication factor), so `deployed_catalogue` sets it.
    min_insync_replicas: int = 1

    def name(self, prefix: str) -> str:
        return f"{prefix}.{self.suffix}"

    def configs(self) -> dict[str, str]:
        """Topic-level configs that `triggerline topics ensure` sets and checks for drift."""
        retention = "-1" if self.retention_ms is None else str(self.retention_ms)
        configs = {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": retention,
            "max.message.bytes": str(self.max_message_bytes),
            "min.insync.replicas": str(self.min_insync_replicas),
        }
        if self.segment_ms is not None:
            configs["segment.ms"] = str(self.segment_ms)
        return configs


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordTopicSpec(TopicSpec, Generic[R]):
    """A topic whose values are one versioned record type (a null value is a tombstone)."""

    record_type: type[R]
    _codec: RecordCodec[R] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once per topic at import time: the codec's encoder and decoder are reused.
        object.__setattr__(self, "_codec", RecordCodec(self.record_type))

    def encode(self, record: R) -> bytes:
        return self._codec.encode(record)

    def decode(self, raw: bytes | None, position: RecordPosition | None = None) -> R:
        return self._codec.decode(raw, position)


RAW_EVENTS = RecordTopicSpec(
    suffix="raw-events",
    record_type=RawEvent,
    partitions=6,
    # The replay source: long enough to re-drive a month of traffic after a bad deploy.
    retention_ms=30 * DAY_MS,
    key_format="trigger id (utf-8)",
    value_format="RawEvent v1 (orjson)",
    description="Every verified inbound event or schedule tick, body unchanged.",
)

TRIGGER_CONFIG = RecordTopicSpec(
    suffix="trigger-config",
    record_type=TriggerConfig,
    partitions=3,
    cleanup_policy="compact",
    retention_ms=None,
    key_format="trigger id (utf-8)",
    value_format="TriggerConfig v2 (orjson; v1 records read as v2); null when deleted",
    description="The data plane's view of the trigger registry, fed by the outbox relay.",
)

ROUTED_EVENTS = RecordTopicSpec(
    suffix="routed-events",
    record_type=RoutedEvent,
    partitions=6,
    retention_ms=7 * DAY_MS,
    key_format="correlation id (utf-8), so that one conversation stays on one partition",
    value_format="CloudEvent 1.0, structured mode (application/cloudevents+json)",
    description="Normalized, filtered events ready for delivery, one per destination.",
)
# Routed records also carry their destination's name in this header, so that the dispatcher
# orders deliveries per (correlation id, destination) without decoding the value.
DESTINATION_HEADER = "triggerline-destination"

DELIVERY_LOG = RecordTopicSpec(
    suffix="delivery-log",
    record_type=DeliveryLogRecord,
    partitions=6,
    retention_ms=30 * DAY_MS,
    key_format="event id (utf-8)",
    value_format="DeliveryLogRecord v1 (orjson)",
    description="One record per processing decision and per delivery attempt.",
)

DEAD_LETTERS = RecordTopicSpec(
    suffix="dead-letters",
    record_type=DeadLetter,
    partitions=3,
    retention_ms=90 * DAY_MS,
    key_format="event id, or topic/partition/offset when the record could not be decoded",
    value_format="DeadLetter v1 (orjson)",
    description="Records that could not be processed or delivered, with the reason.",
)

CRON_LEADER = TopicSpec(
    suffix="cron-leader",
    # One partition: the cron producer that owns it is the one that fires ticks.
    partitions=1,
    retention_ms=DAY_MS,
    key_format="none (no records are written; the topic exists for its partition)",
    value_format="none",
    description="Leader election among cron producer replicas, through their consumer group.",
)

CRON_PROGRESS = RecordTopicSpec(
    suffix="cron-progress",
    record_type=CronProgress,
    partitions=1,
    cleanup_policy="compact",
    retention_ms=None,
    key_format="trigger id (utf-8)",
    value_format="CronProgress v1 (orjson); a tombstone when the trigger is deleted",
    description="The last scheduled time fired per cron trigger, written with its tick.",
)

PROCESSOR_DEDUPE = TopicSpec(
    suffix="processor-dedupe",
    # Co-partitioned with raw-events: the marks of raw partition n are on partition n.
    partitions=RAW_EVENTS.partitions,
    # Sized for the default one-hour window by `dedupe_changelog`.
    retention_ms=2 * HOUR_MS,
    segment_ms=HOUR_MS // 4,
    key_format="trigger id/event id (utf-8)",
    value_format="empty; the record timestamp is the raw event's",
    description="The processors' deduplication marks, written in the transaction of their event.",
)


def dedupe_changelog(window_s: float) -> TopicSpec:
    """The deduplication changelog sized for a window: the processors keep marks for up to two
    windows, so the changelog keeps two; segments close every quarter window, so the broker
    holds at most an eighth more than that."""
    window_ms = max(1, int(window_s * 1000))
    return replace(PROCESSOR_DEDUPE, retention_ms=2 * window_ms, segment_ms=max(1, window_ms // 4))


CATALOGUE: tuple[TopicSpec, ...] = (
    RAW_EVENTS,
    TRIGGER_CONFIG,
    ROUTED_EVENTS,
    DELIVERY_LOG,
    DEAD_LETTERS,
    CRON_LEADER,
    CRON_PROGRESS,
    PROCESSOR_DEDUPE,
)
