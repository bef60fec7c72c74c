"""Every Prometheus metric Triggerline exports, declared in one place.

Labels are bounded: definition slug, target kind, outcome, stage. Never a trigger id, an event id
or a correlation id, which would grow without limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from schemas.triggers import TargetKind

PREFIX = "triggerline"

# Latency buckets in seconds, from a fast in-process hop to a slow HTTP target.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

INGEST_REQUESTS = Counter(
    f"{PREFIX}_ingest_requests_total",
    "Webhook requests by definition and outcome.",
    ["definition", "outcome"],
)
INGEST_PRODUCE_LATENCY = Histogram(
    f"{PREFIX}_ingest_produce_seconds",
    "Time for Kafka to acknowledge a raw event (acks=all).",
    buckets=_LATENCY_BUCKETS,
)
INGEST_IN_FLIGHT = Gauge(f"{PREFIX}_ingest_in_flight", "Webhook requests being handled.")
INGEST_REFUSED = Counter(
    f"{PREFIX}_ingest_rejected_requests_total",
    "Requests ingest refused as unverifiable (missing_headers, malformed_timestamp, "
    "stale_timestamp, mismatch), too slow to arrive (header_timeout, body_timeout), with "
    "headers too large (headers_too_large), past the connection limit (over_connection_limit) "
    "or not HTTP (invalid_http); their log lines are rate-limited, this counts every one.",
    ["reason"],
)

PROCESSOR_EVENTS = Counter(
    f"{PREFIX}_processor_events_total",
    "Processor decisions, by definition and outcome: one per raw event, or one per destination"
    " of an event its trigger's rules pass.",
    ["definition", "outcome"],
)
PROCESSOR_EVENTS_IN = Counter(
    f"{PREFIX}_processor_events_in_total",
    "Raw events read by the processors, by definition (unknown when undecodable).",
    ["definition"],
)
PROCESSOR_CEL_EVALUATION = Histogram(
    f"{PREFIX}_processor_cel_evaluation_seconds",
    "Time to evaluate one CEL filter or correlation expression, by engine (one evaluation "
    "in 16 is timed).",
    ["engine"],
    buckets=(1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3),
)
PROCESSOR_CONSUMER_LAG = Gauge(
    f"{PREFIX}_processor_consumer_lag",
    "Raw events not yet committed by the processor group, per raw-events partition this "
    "worker owns (the same figures as triggerline_consumer_lag of the raw-events topic).",
    ["partition"],
)
CONSUMER_LAG = Gauge(
    f"{PREFIX}_consumer_lag",
    "Records after the committed offset of this worker's consumer group, per partition of its "
    "input topic it owns: raw-events (processors), routed-events (dispatchers), delivery-log "
    "(delivery-log sink).",
    ["topic", "partition"],
)
DEAD_LETTERS_WRITTEN = Counter(
    f"{PREFIX}_dead_letters_total",
    "Records this process wrote to the dead-letters topic, by reason: undecodable, "
    "processing_error, unroutable, trigger_unusable, too_large (processors); undecodable, "
    "trigger_unusable, rejected, retries_exhausted (dispatchers).",
    ["reason"],
)

PROCESSOR_COMMIT_LATENCY = Histogram(
    f"{PREFIX}_processor_commit_seconds",
    "Time to commit one raw partition's transaction: produce its outputs, send its offset, commit.",
    buckets=_LATENCY_BUCKETS,
)
PROCESSOR_DEDUPE_KEYS = Gauge(
    f"{PREFIX}_processor_dedupe_keys",
    "Deduplication marks in this worker's local stores (RocksDB's estimate).",
)
PROCESSOR_DEDUPE_RESTORED = Counter(
    f"{PREFIX}_processor_dedupe_restored_total",
    "Deduplication marks read from the changelog into a local store on partition assignment.",
)

DISPATCH_DELIVERIES = Counter(
    f"{PREFIX}_dispatcher_deliveries_total",
    "Delivery outcomes by target kind.",
    ["target_kind", "outcome"],
)
DISPATCH_ATTEMPT_LATENCY = Histogram(
    f"{PREFIX}_dispatcher_attempt_seconds",
    "Duration of one delivery attempt.",
    ["target_kind"],
    buckets=_LATENCY_BUCKETS,
)
DISPATCH_END_TO_END_LATENCY = Histogram(
    f"{PREFIX}_end_to_end_seconds",
    "From ingest acceptance to the target's acknowledgement.",
    ["target_kind"],
    buckets=_LATENCY_BUCKETS,
)
# The outcomes of `triggerline_dispatcher_deliveries_total`.
DELIVERY_OUTCOMES = ("delivered", "retrying", "failed", "dead_lettered", "skipped")
DISPATCH_IN_FLIGHT = Gauge(f"{PREFIX}_dispatcher_in_flight", "Deliveries in progress.")
DISPATCH_CIRCUITS = Gauge(
    f"{PREFIX}_dispatcher_circuits",
    "Circuit breakers per destination, by target kind and state (closed, open, half_open).",
    ["target_kind", "state"],
)
DISPATCH_PENDING = Gauge(
    f"{PREFIX}_dispatcher_pending",
    "Routed records fetched and not yet finished (waiting, retrying or in flight).",
)
DISPATCH_PAUSED_PARTITIONS = Gauge(
    f"{PREFIX}_dispatcher_paused_partitions",
    "Routed-events partitions paused because too much work is held back.",
)
DISPATCH_LIMIT_WAIT = Counter(
    f"{PREFIX}_dispatcher_limit_wait_seconds_total",
    "Seconds records waited, before an attempt, for their destination's limits in this "
    "dispatcher: its rate limit (rate), a pause after a 429 or a Retry-After (retry_after), "
    "its max_concurrency (concurrency). By target kind and limit.",
    ["target_kind", "limit"],
)
DISPATCH_PAUSED_DESTINATIONS = Gauge(
    f"{PREFIX}_dispatcher_paused_destinations",
    "Destinations this dispatcher sends nothing to until their target's Retry-After (or a "
    "429's backoff) has passed.",
)
SINK_ROWS = Counter(
    f"{PREFIX}_delivery_log_sink_rows_total",
    "Delivery-log records written to PostgreSQL (duplicates from re-reads are not counted).",
)
SINK_ROWS_SET_ASIDE = Counter(
    f"{PREFIX}_sink_rows_set_aside_total",
    "Delivery-log records PostgreSQL refused as data (each is logged and skipped).",
)
SINK_ROWS_PRUNED = Counter(
    f"{PREFIX}_delivery_log_sink_rows_pruned_total",
    "Delivery-log rows deleted from PostgreSQL after their retention.",
)

UNDECODABLE_RECORDS = Counter(
    f"{PREFIX}_undecodable_records_total",
    "Records that failed to decode and were dead-lettered.",
    ["stage"],
)
CONFIG_TRIGGERS = Gauge(
    f"{PREFIX}_config_triggers",
    "Triggers in this process's view of the trigger-config topic.",
    ["stage"],
)
CONFIG_UNUSABLE_TRIGGERS = Gauge(
    f"{PREFIX}_config_unusable_triggers",
    "Triggers whose config is on the topic but unusable here (undecryptable secrets, a config "
    "that does not compile); their events are dead-lettered with the reason.",
    ["stage"],
)

CRON_IS_LEADER = Gauge(f"{PREFIX}_cron_leader", "1 while this cron producer is the active leader.")
CRON_ACTIVE_SCHEDULES = Gauge(
    f"{PREFIX}_cron_active_schedules", "Active cron triggers this producer schedules."
)
CRON_TICKS = Counter(
    f"{PREFIX}_cron_ticks_total",
    "Scheduled times by outcome: fired, or skipped by the misfire policy.",
    ["outcome"],
)
CRON_LATENESS = Histogram(
    f"{PREFIX}_cron_lateness_seconds",
    "From a tick's scheduled time until Kafka acknowledged it.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)

OUTBOX_PENDING_ROWS = Gauge(
    f"{PREFIX}_outbox_pending_rows",
    "Registry changes in the outbox not yet published to the trigger-config topic (counted up "
    "to 10,000), as this ingest process last measured.",
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    f"{PREFIX}_outbox_oldest_pending_age_seconds",
    "Age of the oldest registry change not yet published to the trigger-config topic; 0 when "
    "every change is published.",
)
OUTBOX_ROWS_SET_ASIDE = Counter(
    f"{PREFIX}_outbox_rows_set_aside_total",
    "Outbox rows the relay could never publish (too large, refused); each is marked with its "
    "error and skipped.",
)

REPLAY_COPIES = Counter(
    f"{PREFIX}_replay_copies_total",
    "Raw events replays sent through the pipeline again (committed transactions only).",
)


@dataclass(frozen=True, slots=True)
class DispatcherSeries:
    """The delivery series of one target kind, each looked up once: `labels()` takes a lock and
    builds a key on every call, and a dispatcher reports several per delivery."""

    attempt_seconds: Histogram
    end_to_end_seconds: Histogram
    # By outcome, one of DELIVERY_OUTCOMES.
    deliveries: Mapping[str, Counter]


def dispatcher_series() -> dict[str, DispatcherSeries]:
    """The dispatchers' series by target kind, all exported before the first delivery:
    Prometheus counts an increase only between two scrapes of a series, so a series that
    appears with its first delivery hides that delivery from rates and quantiles."""
    return {
        kind: DispatcherSeries(
            DISPATCH_ATTEMPT_LATENCY.labels(kind),
            DISPATCH_END_TO_END_LATENCY.labels(kind),
            {outcome: DISPATCH_DELIVERIES.labels(kind, outcome) for outcome in DELIVERY_OUTCOMES},
        )
        for kind in get_args(TargetKind)
    }
