"""Settings shared by every Triggerline service.

Each service reads the external services it talks to from the environment. The defaults point at
the local Kafka broker and PostgreSQL cluster that `triggerline up` starts, so a user with their
own cluster sets `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` and nothing local is needed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

LOCAL_KAFKA_PORT = 19092
LOCAL_KAFKA_CONTROLLER_PORT = 19093
LOCAL_POSTGRES_PORT = 15432
LOCAL_DATABASE = "triggerline"


class Settings(BaseSettings):
    """One settings object per process; services read only the fields they need."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = f"127.0.0.1:{LOCAL_KAFKA_PORT}"
    database_url: SecretStr = SecretStr(
        f"postgresql://postgres@127.0.0.1:{LOCAL_POSTGRES_PORT}/{LOCAL_DATABASE}"
    )
    # Prefix for every topic and consumer group, so that tests and tenants can share a cluster.
    topic_prefix: str = Field(default="triggerline", alias="TRIGGERLINE_TOPIC_PREFIX")
    # Where local services, faust state and generated keys live. Git-ignored.
    local_dir: Path = Field(default=REPO_ROOT / ".local", alias="TRIGGERLINE_LOCAL_DIR")
    # Fernet keys as "key_id:base64key" pairs separated by commas; the first one encrypts.
    secret_keys: SecretStr = Field(default=SecretStr(""), alias="TRIGGERLINE_SECRET_KEYS")
    log_level: str = Field(default="INFO", alias="TRIGGERLINE_LOG_LEVEL")

    ingest_host: str = Field(default="127.0.0.1", alias="TRIGGERLINE_INGEST_HOST")
    ingest_port: int = Field(default=8080, alias="TRIGGERLINE_INGEST_PORT")
    # Public base of webhook URLs shown by the registry.
    public_base_url: str = Field(
        default="http://127.0.0.1:8080", alias="TRIGGERLINE_PUBLIC_BASE_URL"
    )
    # Slack allows 3 s for an answer; the produce budget leaves room for the rest of the request.
    ingest_produce_timeout_s: float = Field(default=2.0, alias="TRIGGERLINE_PRODUCE_TIMEOUT_S")
    ingest_max_body_bytes: int = Field(default=1024 * 1024, alias="TRIGGERLINE_MAX_BODY_BYTES")
    # Inbound rate per trigger unless its config sets `rate_limit`: well above what one Slack
    # workspace may send (30,000 events/hour), low enough that one runaway sender cannot
    # starve the raw topic.
    ingest_rate_limit_per_s: float = Field(
        default=100.0, gt=0, alias="TRIGGERLINE_INGEST_RATE_LIMIT_PER_S"
    )
    ingest_rate_limit_burst: float = Field(
        default=500.0, ge=1, alias="TRIGGERLINE_INGEST_RATE_LIMIT_BURST"
    )
    # /metrics, /healthz and /readyz, on 127.0.0.1 only: the webhook port is public.
    ingest_metrics_port: int = Field(default=9100, alias="TRIGGERLINE_INGEST_METRICS_PORT")
    # A sender's event id (webhook-id, Slack's event_id) travels in every log line, in ingest's
    # recent ids and in the processors' deduplication keys. Slack's are about 12 characters,
    # Standard Webhooks' `msg_` ids about 30; longer ones are answered 400.
    ingest_max_event_id_length: int = Field(
        default=256, ge=16, le=64 * 1024, alias="TRIGGERLINE_MAX_EVENT_ID_LENGTH"
    )
    # Ingest's memory of event ids it stored lately (ingest/recent_ids.py), which only tells
    # `duplicate` from `accepted` in its metrics: at most this many, each for this long (the
    # processors' deduplication window).
    ingest_recent_ids_max: int = Field(
        default=50_000, ge=1, alias="TRIGGERLINE_INGEST_RECENT_IDS_MAX"
    )
    ingest_recent_ids_retention_s: float = Field(
        default=3600.0, gt=0, alias="TRIGGERLINE_INGEST_RECENT_IDS_RETENTION_S"
    )
    # Refused requests (forged signatures, slow requests, connection floods) write at most one
    # log line per definition and reason this often, with the number left out since; the counter
    # has them all.
    ingest_refusal_log_interval_s: float = Field(
        default=60.0, gt=0, alias="TRIGGERLINE_INGEST_REFUSAL_LOG_INTERVAL_S"
    )
    # Open connections (and requests in progress) on the webhook port; past it uvicorn answers
    # 503 at once, so a flood cannot take all memory or file descriptors.
    ingest_max_connections: int = Field(
        default=1000, ge=2, alias="TRIGGERLINE_INGEST_MAX_CONNECTIONS"
    )
    # A request's line and headers, and then its body, must arrive within these, or it is
    # answered 408 and the connection closed (slowloris). Senders send a whole event at once.
    ingest_header_read_timeout_s: float = Field(
        default=10.0, gt=0, alias="TRIGGERLINE_INGEST_HEADER_READ_TIMEOUT_S"
    )
    ingest_body_read_timeout_s: float = Field(
        default=10.0, gt=0, alias="TRIGGERLINE_INGEST_BODY_READ_TIMEOUT_S"
    )
    # A request's line and headers together: senders' are a few hundred bytes, proxies add a
    # few KiB. Larger ones are answered 431 (the HTTP parser would buffer them whole).
    ingest_max_header_bytes: int = Field(
        default=64 * 1024, ge=4096, alias="TRIGGERLINE_INGEST_MAX_HEADER_BYTES"
    )

    processor_metrics_port: int = Field(default=9101, alias="TRIGGERLINE_PROCESSOR_METRICS_PORT")
    # `batch`, a read-process-write loop on aiokafka transactions, or `faust`, the
    # faust-streaming reference; both keep to the same group, transactional ids and
    # deduplication changelog (docs/design.md).
    processor_engine: Literal["batch", "faust"] = Field(
        default="batch", alias="TRIGGERLINE_PROCESSOR_ENGINE"
    )
    # How often each raw partition's transaction commits: a routed record is invisible to the
    # dispatchers until then, so this bounds the processors' share of end-to-end latency.
    processor_commit_interval_s: float = Field(
        default=0.05, gt=0, alias="TRIGGERLINE_PROCESSOR_COMMIT_INTERVAL_S"
    )
    # Output records one raw partition holds for its next transaction; at this many it commits
    # early, and while its previous commit still runs it stops fetching (batch engine).
    processor_max_pending_records: int = Field(
        default=20_000, ge=100, alias="TRIGGERLINE_PROCESSOR_MAX_PENDING_RECORDS"
    )
    # A raw event whose (trigger id, event id) was seen this recently is a duplicate (a sender's
    # retry); Slack retries within minutes, so an hour leaves a wide margin.
    processor_dedupe_window_s: float = Field(
        default=3600.0, gt=0, alias="TRIGGERLINE_PROCESSOR_DEDUPE_WINDOW_S"
    )
    # RocksDB block cache and write buffers of one worker's deduplication stores (their keys
    # are on disk, under the local dir).
    processor_dedupe_memory_mb: int = Field(
        default=32, ge=8, alias="TRIGGERLINE_PROCESSOR_DEDUPE_MEMORY_MB"
    )
    # A correlation id is the routed record's key, its CloudEvents subject and a delivery-log
    # column: Slack's channel:thread ids are about 25 bytes and composite business keys a few
    # dozen, so 256 leaves room while keeping keys small. Longer ones are a `filter_error`.
    processor_max_correlation_id_bytes: int = Field(
        default=256, ge=16, le=64 * 1024, alias="TRIGGERLINE_MAX_CORRELATION_ID_BYTES"
    )
    # Entries of one list or map an expression with a comprehension (map, filter...) may be
    # handed: cel-expr-python's map over n items costs n² (1,000: 30 ms; 8,000: 3.6 s, 1 GB),
    # so one event stays within tens of milliseconds. Larger ones are a `filter_error`.
    cel_max_collection_items: int = Field(
        default=1000, ge=10, alias="TRIGGERLINE_CEL_MAX_COLLECTION_ITEMS"
    )
    # Trigger ids a config view found absent after a sync (deleted or never created) are
    # answered from memory for this long, so a backlog of their events costs a sync per id
    # and retention rather than one per event (each waits up to a poll, 200 ms). Ids are never
    # reused and a config record for one forgets it, so the retention only bounds the memory.
    config_absent_retention_s: float = Field(
        default=600.0, gt=0, alias="TRIGGERLINE_CONFIG_ABSENT_RETENTION_S"
    )
    # At most this many such ids are remembered (about 100 bytes each), oldest forgotten first.
    config_absent_max_ids: int = Field(
        default=100_000, ge=1, alias="TRIGGERLINE_CONFIG_ABSENT_MAX_IDS"
    )
    # The CEL engine for filters; the default is the fastest (benchmarks/processor_cel_engines.py).
    cel_engine: Literal["cel-expr-python", "celpy"] = Field(
        default="cel-expr-python", alias="TRIGGERLINE_CEL_ENGINE"
    )
    # How long a silent processor worker keeps its partitions before the group reassigns them:
    # shorter means a crashed worker's partitions resume sooner, too short means rebalances on
    # a slow heartbeat.
    processor_session_timeout_s: float = Field(
        default=10.0, gt=0, alias="TRIGGERLINE_PROCESSOR_SESSION_TIMEOUT_S"
    )
    # Off only to measure what exactly-once costs (benchmarks/processor_throughput.py).
    processor_exactly_once: bool = Field(default=True, alias="TRIGGERLINE_PROCESSOR_EXACTLY_ONCE")
    # Fault injection for the exactly-once tests (processors/faults.py); empty in production.
    processor_fault: str = Field(default="", alias="TRIGGERLINE_PROCESSOR_FAULT")
    dispatcher_metrics_port: int = Field(default=9102, alias="TRIGGERLINE_DISPATCHER_METRICS_PORT")
    # Every ingest replica runs a cron producer; they elect one leader among themselves.
    cron_enabled: bool = Field(default=True, alias="TRIGGERLINE_CRON_ENABLED")
    # Only a cron producer run on its own (`python -m ingest.cron`) serves this port.
    cron_metrics_port: int = Field(default=9103, alias="TRIGGERLINE_CRON_METRICS_PORT")
    # Deliveries in progress at once: per routed-events partition and in the whole process.
    dispatcher_max_in_flight: int = Field(default=512, alias="TRIGGERLINE_DISPATCHER_MAX_IN_FLIGHT")
    dispatcher_max_in_flight_per_partition: int = Field(
        default=128, alias="TRIGGERLINE_DISPATCHER_MAX_IN_FLIGHT_PER_PARTITION"
    )
    # Records fetched but not finished on one partition before it is paused (backpressure).
    dispatcher_max_pending_per_partition: int = Field(
        default=2000, alias="TRIGGERLINE_DISPATCHER_MAX_PENDING_PER_PARTITION"
    )
    dispatcher_backoff_base_s: float = Field(
        default=1.0, alias="TRIGGERLINE_DISPATCHER_BACKOFF_BASE_S"
    )
    dispatcher_backoff_cap_s: float = Field(
        default=300.0, alias="TRIGGERLINE_DISPATCHER_BACKOFF_CAP_S"
    )
    dispatcher_circuit_failures: int = Field(
        default=5, alias="TRIGGERLINE_DISPATCHER_CIRCUIT_FAILURES"
    )
    dispatcher_circuit_cooldown_s: float = Field(
        default=30.0, alias="TRIGGERLINE_DISPATCHER_CIRCUIT_COOLDOWN_S"
    )
    dispatcher_commit_interval_s: float = Field(
        default=0.05, alias="TRIGGERLINE_DISPATCHER_COMMIT_INTERVAL_S"
    )
    # How long SIGTERM waits for in-flight attempts before giving them back uncommitted.
    dispatcher_shutdown_deadline_s: float = Field(
        default=10.0, alias="TRIGGERLINE_DISPATCHER_SHUTDOWN_DEADLINE_S"
    )
    # HTTP targets on loopback, link-local or private addresses are refused unless this is set
    # (server-side request forgery guard); local development and tests set it.
    dispatcher_allow_private_targets: bool = Field(
        default=False, alias="TRIGGERLINE_DISPATCHER_ALLOW_PRIVATE_TARGETS"
    )
    sink_metrics_port: int = Field(default=9104, alias="TRIGGERLINE_SINK_METRICS_PORT")
    # Deliveries in progress at once to one endpoint (scheme, host and port, or a topic): a
    # slow endpoint that still answers 2xx then holds an eighth of the process's slots at most.
    dispatcher_max_in_flight_per_endpoint: int = Field(
        default=64, ge=1, alias="TRIGGERLINE_DISPATCHER_MAX_IN_FLIGHT_PER_ENDPOINT"
    )
    # Circuit breakers kept in memory: one per endpoint a dispatcher delivered to recently.
    # Far more endpoints than any deployment calls at once; closed, idle ones go first.
    dispatcher_circuit_max_endpoints: int = Field(
        default=10_000, ge=1, alias="TRIGGERLINE_DISPATCHER_CIRCUIT_MAX_ENDPOINTS"
    )
    # A closed circuit unused this long is forgotten; an hour outlives any retry backoff (5 min).
    dispatcher_circuit_idle_s: float = Field(
        default=3600.0, gt=0, alias="TRIGGERLINE_DISPATCHER_CIRCUIT_IDLE_S"
    )
    # Delivery-log rows in PostgreSQL older than this are pruned by the sink. Two weeks cover
    # an investigation; the delivery-log topic itself keeps 30 days.
    delivery_log_retention_s: float = Field(
        default=14 * 24 * 3600.0, gt=0, alias="TRIGGERLINE_DELIVERY_LOG_RETENTION_S"
    )

    # Secrets one trigger, and one environment, may hold: real definitions need two or three,
    # and 50 at the 4 KiB value limit still fit in a config record.
    registry_max_secrets: int = Field(default=50, ge=1, alias="TRIGGERLINE_MAX_SECRETS")
    # Largest encoded trigger-config record a save may produce. Well below the topic's 4 MiB
    # record bound, so every trigger's record can always be published, and small enough that
    # every process's view of the topic stays small.
    registry_config_record_max_bytes: int = Field(
        default=256 * 1024, ge=4096, le=4 * 1024 * 1024, alias="TRIGGERLINE_CONFIG_RECORD_MAX_BYTES"
    )
    # Published outbox rows are only history once on the topic; a week covers an investigation.
    outbox_retention_s: float = Field(
        default=7 * 24 * 3600.0, gt=0, alias="TRIGGERLINE_OUTBOX_RETENTION_S"
    )
    # Rows set aside as unpublishable stay longer, so an operator has time to look at them.
    outbox_set_aside_retention_s: float = Field(
        default=30 * 24 * 3600.0, gt=0, alias="TRIGGERLINE_OUTBOX_SET_ASIDE_RETENTION_S"
    )
    # Control-plane request bodies: a trigger at every bound (50 secrets of 4 KiB, a config)
    # fits, and nothing larger is read into memory.
    api_max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, alias="TRIGGERLINE_API_MAX_BODY_BYTES"
    )
    # Kafka targets must also fully match this (Python regex) when set; topics under the topic
    # prefix and Kafka's own `__` topics are refused regardless.
    kafka_target_topic_pattern: str | None = Field(
        default=None, alias="TRIGGERLINE_KAFKA_TARGET_TOPIC_PATTERN"
    )

    topic_replication_factor: int = Field(
        default=1, ge=1, alias="TRIGGERLINE_TOPIC_REPLICATION_FACTOR"
    )
    # Replicas that must have a record before Kafka acknowledges it (acks=all): a 2xx means the
    # event survives the loss of a leader only if this is at least 2. Unset, it is 2 when the
    # replication factor allows, else the replication factor.
    topic_min_insync_replicas: int | None = Field(
        default=None, ge=1, alias="TRIGGERLINE_TOPIC_MIN_INSYNC_REPLICAS"
    )

    def group(self, stage: str) -> str:
        return f"{self.topic_prefix}.{stage}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
