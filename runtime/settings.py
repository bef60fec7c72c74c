"""Settings shared by every Triggerline service.

Each service reads the external services it talks to from the environment. The defaults point at
the local Kafka broker and PostgreSQL cluster that `triggerline up` starts, so a user with their
own cluster sets `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` and nothing local is needed.

Settings are grouped by stage, one model each, and an environment variable's name is its model's
prefix followed by the field's name: `settings.ingest.max_connections` is read from
`TRIGGERLINE_INGEST_MAX_CONNECTIONS`. Tests change values with `Settings.override`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

LOCAL_KAFKA_PORT = 19092
LOCAL_KAFKA_CONTROLLER_PORT = 19093
LOCAL_POSTGRES_PORT = 15432
LOCAL_DATABASE = "triggerline"
DEFAULT_LOG_EVENT_LINES_PER_S = 20.0


def _config(env_prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=env_prefix, extra="ignore", frozen=True)


class KafkaSettings(BaseSettings):
    model_config = _config("KAFKA_")

    bootstrap_servers: str = f"127.0.0.1:{LOCAL_KAFKA_PORT}"


class DatabaseSettings(BaseSettings):
    model_config = _config("DATABASE_")

    url: SecretStr = SecretStr(
        f"postgresql://postgres@127.0.0.1:{LOCAL_POSTGRES_PORT}/{LOCAL_DATABASE}"
    )


class TopicSettings(BaseSettings):
    model_config = _config("TRIGGERLINE_TOPIC_")

    # Prefix for every topic and consumer group, so that tests and tenants can share a cluster.
    prefix: str = "triggerline"
    replication_factor: int = Field(default=1, ge=1)
    # Replicas that must have a record before Kafka acknowledges it (acks=all): a 2xx means the
    # event survives the loss of a leader only if this is at least 2. Unset, it is 2 when the
    # replication factor allows, else the replication factor.
    min_insync_replicas: int | None = Field(default=None, ge=1)


class IngestSettings(BaseSettings):
    model_config = _config("TRIGGERLINE_INGEST_")

    host: str = "127.0.0.1"
    port: int = 8080
    # Slack allows 3 s for an answer; the produce budget leaves room for the rest of the request.
    produce_timeout_s: float = 2.0
    max_body_bytes: int = 1024 * 1024
    # Inbound rate per trigger unless its config sets `rate_limit`: well above what one Slack
    # workspace may send (30,000 events/hour), low enough that one runaway sender cannot
    # starve the raw topic.
    rate_limit_per_s: float = Field(default=100.0, gt=0)
    rate_limit_burst: float = Field(default=500.0, ge=1)
    # /metrics, /healthz and /readyz, on the ops host (TRIGGERLINE_OPS_HOST), never on the
    # public webhook port.
    metrics_port: int = 9100
    # A sender's event id (webhook-id, Slack's event_id) travels in every log line, in ingest's
    # recent ids and in the processors' deduplication keys. Slack's are about 12 characters,
    # Standard Webhooks' `msg_` ids about 30; longer ones are answered 400.
    max_event_id_length: int = Field(default=256, ge=16, le=64 * 1024)
    # Ingest's memory of event ids it stored lately (ingest/recent_ids.py), which only tells
    # `duplicate` from `accepted` in its metrics: at most this many, each for this long (the
    # processors' deduplication window).
    recent_ids_max: int = Field(default=50_000, ge=1)
    recent_ids_retention_s: float = Field(default=3600.0, gt=0)
    # Refused requests (forged signatures, slow requests, connection floods) write at most one
    # log line per definition and reason this often, with the number left out since; the counter
    # has them all.
    refusal_log_interval_s: float = Field(default=60.0, gt=0)
    # Open connections (and requests in progress) on the webhook port; past it uvicorn answers
    # 503 at once, so a flood cannot take all memory or file descriptors.
    max_connections: int = Field(default=1000, ge=2)
    # A request's line and headers, and then its body, must arrive within these, or it is
    # answered 408 and the connection closed (slowloris). Senders send a whole event at once.
    header_read_timeout_s: float = Field(default=10.0, gt=0)
    body_read_timeout_s: float = Field(default=10.0, gt=0)
    # A request's line and headers together: senders' are a few hundred bytes, proxies add a
    # few KiB. Larger ones are answered 431 (the HTTP parser would buffer them whole).
    max_header_bytes: int = Field(default=64 * 1024, ge=4096)


class CronSettings(BaseSettings):
    model_config = _config("TRIGGERLINE_CRON_")

    # Every ingest replica runs a cron producer; they elect one leader among themselves.
    enabled: bool = True
    # Only a cron producer run on its own (`python -m ingest.cron`) serves this port.
    metrics_port: int = 9103


class ProcessorSettings(BaseSettings):
    model_config = _config("TRIGGERLINE_PROCESSOR_")

    metrics_port: int = 9101
    # `batch`, a read-process-write loop on aiokafka transactions, or `faust`, the
    # faust-streaming reference; both keep to the same group, transactional ids and
    # deduplication changelog (docs/design.md).
    engine: Literal["batch", "faust"] = "batch"
    # How often each raw partition's transaction commits: a routed record is invisible to the
    # dispatchers until then, so this bounds the processors' share of end-to-end latency.
    commit_interval_s: float = Field(default=0.05, gt=0)
    # Output records one raw partition holds for its next transaction; at this many it commits
    # early, and while its previous commit still runs it stops fetching (batch engine).
    max_pending_records: int = Field(default=20_000, ge=100)
    # A raw event whose (trigger id, event id) was seen this recently is a duplicate (a sender's
    # retry); Slack retries within minutes, so an hour leaves a wide margin.
    dedupe_window_s: float = Field(default=3600.0, gt=0)
    # RocksDB block cache and write buffers of one worker's deduplication stores (their keys
    # are on disk, under the local dir).
    dedupe_memory_mb: int = Field(default=32, ge=8)
    # A correlation id is the routed record's key, its CloudEvents subject and a delivery-log
    # column: Slack's channel:thread ids are about 25 bytes and composite business keys a few
    # dozen, so 256 leaves room while keeping keys small. Longer ones are a `filter_error`.
    max_correlation_id_bytes: int = Field(default=256, ge=16, le=64 * 1024)
    # How long a silent processor worker keeps its partitions before the group reassigns them:
    # shorter means a crashed worker's partitions resume sooner, too short means rebalances on
    # a slow heartbeat.
    session_timeout_s: float = Field(default=10.0, gt=0)
    # Off only to measure what exactly-once costs (benchmarks/processor_throughput.py).
    exactly_once: bool = True
    # Fault injection for the exactly-once tests (processors/faults.py); empty in production.
    fault: str = ""


class CelSettings(BaseSettings):
    model_config = _config("TRIGGERLINE_CEL_")

    # The CEL engine for filters; the default is the fastest (benchmarks/processor_cel_engines.py).
    engine: Literal["cel-expr-python", "celpy"] = "cel-expr-python"
    # Entries of one list or map an expression with a comprehension (map, filter...) may be
    # handed: cel-expr-python's map over n items costs n² (1,000: 30 ms; 8,000: 3.6 s, 1 GB),
    # so one event stays within tens of milliseconds. Larger ones are a `filter_error`.
    max_collection_items: int = Field(default=1000, ge=10)


class ConfigViewSettings(BaseSettings):
    """How a process's view of the trigger-config topic remembers triggers it did not find."""

    model_config = _config("TRIGGERLINE_CONFIG_")

    # Trigger ids a config view found absent after a sync (deleted or never created) are
    # answered from memory for this long, so a backlog of their events costs a sync per id
    # and retention rather than one per event (each waits up to a poll, 200 ms). Ids are never
    # reused and a config record for one forgets it, so the retention only bounds the memory.
    absent_retention_s: float = Field(default=600.0, gt=0)
    # At most this many such ids are remembered (about 100 bytes each), oldest forgotten first.
    absent_max_ids: int = Field(default=100_000, ge=1)


class DispatcherSettings(BaseSettings):
    model_config = _config("TRIGGERLINE_DISPATCHER_")

    metrics_port: int = 9102
    # Deliveries in progress at once: per routed-events partition and in the whole process.
    max_in_flight: int = 512
    max_in_flight_per_partition: int = 128
    # Deliveries in progress at once to one endpoint (scheme, host and port, or a topic): a
    # slow endpoint that still answers 2xx then holds an eighth of the process's slots at most.
    max_in_flight_per_endpoint: int = Field(default=64, ge=1)
    # Records fetched but not finished on one partition before it is paused (backpressure).
    max_pending_per_partition: int = 2000
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    circuit_failures: int = 5
    circuit_cooldown_s: float = 30.0
    # Per-destination state kept in memory, in two tables of this bound each: circuit breakers
    # and outbound limiters, one per (trigger, destination) a dispatcher delivered to recently.
    # Far more destinations than any deployment calls at once; settled, idle ones go first.
    destination_table_max: int = Field(default=10_000, ge=1)
    # A settled entry (closed circuit; limiter not paused, bucket full) unused this long is
    # forgotten; an hour outlives any retry backoff (5 min).
    destination_table_idle_s: float = Field(default=3600.0, gt=0)
    commit_interval_s: float = 0.05
    # How long SIGTERM waits for in-flight attempts before giving them back uncommitted.
    shutdown_deadline_s: float = 10.0
    # HTTP targets on loopback, link-local or private addresses are refused unless this is set
    # (server-side request forgery guard); local development and tests set it.
    allow_private_targets: bool = False


class SinkSettings(BaseSettings):
    model_config = _config("TRIGGERLINE_SINK_")

    metrics_port: int = 9104
    # Delivery-log rows in PostgreSQL older than this are pruned by the sink. Two weeks cover
    # an investigation; the delivery-log topic itself keeps 30 days.
    delivery_log_retention_s: float = Field(default=14 * 24 * 3600.0, gt=0)


class RegistrySettings(BaseSettings):
    """The control plane: its API, the trigger registry and the outbox relay. Its variables
    carry no stage word (TRIGGERLINE_MAX_SECRETS), so its prefix is the top-level one."""

    model_config = _config("TRIGGERLINE_")

    # Public base of webhook URLs shown by the registry.
    public_base_url: str = "http://127.0.0.1:8080"
    # Secrets one trigger, and one environment, may hold: real definitions need two or three,
    # and 50 at the 4 KiB value limit still fit in a config record.
    max_secrets: int = Field(default=50, ge=1)
    # Destinations one trigger may hold. Each routed event is delivered once per destination,
    # so this bounds the fan-out of one event, and 10 at the CEL length limit fit in a record.
    max_destinations: int = Field(default=10, ge=1, le=100)
    # Largest encoded trigger-config record a save may produce. Well below the topic's 4 MiB
    # record bound, so every trigger's record can always be published, and small enough that
    # every process's view of the topic stays small.
    config_record_max_bytes: int = Field(default=256 * 1024, ge=4096, le=4 * 1024 * 1024)
    # Published outbox rows are only history once on the topic; a week covers an investigation.
    outbox_retention_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    # Rows set aside as unpublishable stay longer, so an operator has time to look at them.
    outbox_set_aside_retention_s: float = Field(default=30 * 24 * 3600.0, gt=0)
    # Control-plane request bodies: a trigger at every bound (50 secrets of 4 KiB, a config)
    # fits, and nothing larger is read into memory.
    api_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Kafka targets must also fully match this (Python regex) when set; topics under the topic
    # prefix and Kafka's own `__` topics are refused regardless.
    kafka_target_topic_pattern: str | None = None


class ReplaySettings(BaseSettings):
    """Replays: re-sending history through the pipeline, run by ingest or in the foreground by
    `triggerline replay start`."""

    model_config = _config("TRIGGERLINE_REPLAY_")

    # Events a replay sends per second when its request names no rate. The dispatchers are the
    # stage a replay competes with live traffic in: on two cores they deliver about 3,500
    # events/s beside 1,000/s of live load, and 500/s of replay keeps live p99 well within 2x
    # (docs/performance.md, "Replay under live load").
    default_rate_per_s: float = Field(default=500.0, gt=0)
    # The highest rate a replay may ask for. Past the dispatchers' spare capacity, replayed
    # events queue ahead of live ones: on two cores 1,000/s keeps live p99 within 2x and 2,000/s
    # does not. Raise it with the dispatchers' capacity.
    max_rate_per_s: float = Field(default=1000.0, gt=0)
    # Replays of one project that may be pending or running at once; more are refused (409).
    max_active_per_project: int = Field(default=3, ge=1)
    # Finished, cancelled and failed replays are deleted after this; their delivery-log rows
    # follow the sink's retention.
    retention_s: float = Field(default=30 * 24 * 3600.0, gt=0)
    # A runner renews its lease on a replay at every transaction; a lease this old means the
    # runner died, and another runner resumes the replay where Kafka says it stopped.
    lease_s: float = Field(default=30.0, ge=5.0)
    # How often ingest's replay worker looks for a replay to run (or resume).
    poll_interval_s: float = Field(default=2.0, gt=0)
    # Copies sent in one Kafka transaction, at most; a transaction also closes after 0.1 s.
    transaction_events: int = Field(default=100, ge=1, le=10_000)
    # Raw records one dry run may read: a dry run answers within its request.
    dry_run_max_records: int = Field(default=1_000_000, ge=1000)
    # Event ids one replay may name.
    max_event_ids: int = Field(default=1000, ge=1)


class ConsoleSettings(BaseSettings):
    """The web console ingest serves under /console (ingest/console)."""

    model_config = _config("TRIGGERLINE_CONSOLE_")

    # A console session lasts this long from sign-in; then the operator signs in again. The
    # API key is re-checked on every request, so revoking it ends a session sooner.
    session_ttl_s: float = Field(default=8 * 3600.0, gt=0)


class Settings(BaseSettings):
    """One settings object per process; services read only the sections they need."""

    model_config = _config("TRIGGERLINE_")

    # Where local services, faust state and generated keys live. Git-ignored.
    local_dir: Path = REPO_ROOT / ".local"
    # Fernet keys as "key_id:base64key" pairs separated by commas; the first one encrypts.
    secret_keys: SecretStr = SecretStr("")
    log_level: str = "INFO"
    # `json` lines for machines (services run directly or under a supervisor), or `human`, one
    # short line each, which `triggerline run` gives the stages it runs in the foreground.
    log_format: Literal["json", "human"] = "json"
    # Lines per second each process writes at INFO for single events' outcomes (runtime/
    # logging.py): enough for a person to follow every event; past it, outcomes are counted
    # and summed up every 10 s.
    log_event_lines_per_s: float = Field(default=DEFAULT_LOG_EVENT_LINES_PER_S, gt=0)
    # Address every process's ops port (/metrics, /healthz, /readyz) listens on. Loopback keeps
    # them to this host's operators; a container sets 0.0.0.0, so that its orchestrator's probes
    # and Prometheus reach them (the ports carry no secrets and take no writes).
    ops_host: str = "127.0.0.1"

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    cron: CronSettings = Field(default_factory=CronSettings)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    cel: CelSettings = Field(default_factory=CelSettings)
    config_view: ConfigViewSettings = Field(default_factory=ConfigViewSettings)
    dispatcher: DispatcherSettings = Field(default_factory=DispatcherSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    def group(self, stage: str) -> str:
        return f"{self.topics.prefix}.{stage}"

    def replay_group(self, replay_id: str) -> str:
        """The consumer group whose offsets record how far a replay got."""
        return self.group(f"replay-{replay_id}")

    def override(self, **changes: Any) -> Settings:
        """A copy with some values changed, validated as if they came from the environment.

        A section's field is named `<section>__<field>` (`ingest__port=8081`), a top-level
        field by its name (`secret_keys=SecretStr(...)`). An unknown name is an error. What the
        environment set stays marked as set (`model_fields_set`), which tells a user's own
        Kafka or database from the local defaults.
        """
        # Changes per section; "" holds the top-level fields.
        by_model: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            section, nested, name = key.partition("__")
            if not nested and key in Settings.model_fields and key not in _SECTIONS:
                by_model.setdefault("", {})[key] = value
            elif nested and section in _SECTIONS and name in _SECTIONS[section].model_fields:
                by_model.setdefault(section, {})[name] = value
            else:
                raise TypeError(f"Settings has no field {key!r}")
        update: dict[str, Any] = {}
        for section, values in by_model.items():
            current: BaseSettings = getattr(self, section) if section else self
            checked = type(current).model_validate({**current.model_dump(), **values})
            kept = {name: getattr(checked, name) for name in values}
            if section:
                update[section] = current.model_copy(update=kept)
            else:
                update.update(kept)
        return self.model_copy(update=update)


# The sections of `Settings` by name: each one a model with its own prefix.
_SECTIONS: dict[str, type[BaseSettings]] = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings)
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
