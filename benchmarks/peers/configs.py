"""Benthos configs for the three pairings, as the dicts written to YAML.

Each is the Benthos way of doing one stage's job on the same broker, tuned for Benthos's best
case where a setting is free (in-flight limits, batching); where Triggerline promises more
(deduplication, exactly-once, signed and logged deliveries), the config says what Benthos does
instead.
"""

from __future__ import annotations

from typing import Any

from benchmarks.peers.bloblang import SLACK_VERIFICATION, routing_mapping
from schemas.triggers import TriggerConfig

Config = dict[str, Any]

# Concurrent produce requests per output; one per load-generator connection for ingest.
INGEST_MAX_IN_FLIGHT = 64
# Benthos commits consumed offsets on a timer, and both peers are measured from committed
# offsets: the shortest period franz-go accepts, next to the processors' 0.05 s transactions.
COMMIT_PERIOD = "100ms"
# Input batches per partition: each batch is mapped and then produced with one call. The best
# of those tried here: without batching Benthos drained at less than half the rate; batches of
# 500 or 1,000 stalled for seconds at a time against the input's checkpoint_limit (1,024
# records in flight per partition).
PROCESSING_BATCH = {"count": 100, "period": "1ms"}
PROCESSING_MAX_IN_FLIGHT = 32
# Deliveries in flight, as the brief of the pairing fixes; retries as the dispatchers retry in
# the benchmarks (8 attempts, backoff from 0.05 s capped at 0.5 s, 5 s timeout).
DELIVERY_MAX_IN_FLIGHT = 128
DELIVERY_RETRIES = 7
# Records of one partition the input may hold unacknowledged. At the default (1,024) a backlog
# soon pauses every partition, and the input then waits out its one-second stall guard before
# it fetches again; this many lets it drain the benchmark's backlog without pausing.
DELIVERY_CHECKPOINT_LIMIT = 10_000


def _service(ops_port: int) -> Config:
    """Benthos's own HTTP server (metrics, health) on loopback, metrics in Prometheus format
    as the stages export theirs, and no per-message logging."""
    return {
        "http": {"address": f"127.0.0.1:{ops_port}"},
        "logger": {"level": "WARN", "format": "logfmt"},
        "metrics": {"prometheus": {}},
    }


def _kafka_out(brokers: str, topic: str, key: str, max_in_flight: int) -> Config:
    # idempotent_write makes franz-go produce with acks=all, as every Triggerline producer does;
    # no compression, as none of them compresses (franz-go would pick snappy).
    return {
        "kafka_franz": {
            "seed_brokers": [brokers],
            "topic": topic,
            "key": key,
            "idempotent_write": True,
            "compression": "none",
            "max_in_flight": max_in_flight,
        }
    }


def ingest_config(*, brokers: str, topic: str, port: int, ops_port: int, verify: bool) -> Config:
    """`http_server -> kafka_franz` on `/webhooks/{trigger_id}`, keyed by the trigger id.

    The request is answered after the produce is acknowledged (200), or with 401 when
    `verify` is on and the Slack signature or its timestamp does not hold: the rejected message
    becomes the synchronous response and is then dropped, so nothing is produced for it.
    Without `verify` it stores every body: Benthos's best case.
    """
    processors: list[Config] = []
    if verify:
        processors = [
            {"mapping": SLACK_VERIFICATION},
            {
                "switch": [
                    {
                        "check": '@slack_verified != "yes"',
                        "processors": [
                            {"mapping": 'meta status = "401"\nroot = "signature does not match"'},
                            {"sync_response": {}},
                            {"mapping": "root = deleted()"},
                        ],
                    }
                ]
            },
        ]
    return {
        **_service(ops_port),
        "input": {
            "http_server": {
                "address": f"127.0.0.1:{port}",
                "path": "/webhooks/{trigger_id}",
                "ws_path": "",
                "allowed_verbs": ["POST"],
                "timeout": "5s",
                "sync_response": {"status": "${! @status }"},
            }
        },
        "pipeline": {"processors": processors},
        "output": _kafka_out(brokers, topic, "${! @trigger_id }", INGEST_MAX_IN_FLIGHT),
    }


def processing_config(
    *,
    brokers: str,
    raw_topic: str,
    routed_topic: str,
    group: str,
    ops_port: int,
    configs: list[TriggerConfig],
) -> Config:
    """`kafka_franz -> bloblang -> kafka_franz`: the raw events' consumer group, the routing
    mapping of `bloblang.py`, routed records keyed by correlation id. At least once: offsets are
    committed once the output acknowledged every earlier record of the partition; a record is
    routed again after a crash, and a sender's retry is routed again every time."""
    return {
        **_service(ops_port),
        "input": {
            "kafka_franz": {
                "seed_brokers": [brokers],
                "topics": [raw_topic],
                "consumer_group": group,
                "start_from_oldest": True,
                "commit_period": COMMIT_PERIOD,
                "batching": PROCESSING_BATCH,
            }
        },
        "pipeline": {"processors": [{"mapping": routing_mapping(configs)}]},
        "output": _kafka_out(brokers, routed_topic, "${! @correlation }", PROCESSING_MAX_IN_FLIGHT),
    }


def delivery_config(
    *, brokers: str, routed_topic: str, group: str, ops_port: int, url: str
) -> Config:
    """`kafka_franz -> http_client`: each routed record's value POSTed to `url` as it is, up to
    128 in flight, retried on failure. The request is not signed and no delivery is logged;
    records of one partition are in flight together, so one key's deliveries are not ordered."""
    return {
        **_service(ops_port),
        "input": {
            "kafka_franz": {
                "seed_brokers": [brokers],
                "topics": [routed_topic],
                "consumer_group": group,
                "start_from_oldest": True,
                "checkpoint_limit": DELIVERY_CHECKPOINT_LIMIT,
            }
        },
        "output": {
            "http_client": {
                "url": url,
                "verb": "POST",
                "headers": {"Content-Type": "application/json"},
                "timeout": "5s",
                "retries": DELIVERY_RETRIES,
                "retry_period": "50ms",
                "max_retry_backoff": "500ms",
                "max_in_flight": DELIVERY_MAX_IN_FLIGHT,
            }
        },
    }
