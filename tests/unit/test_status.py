"""`triggerline status` and the ops page: drift from the catalogue, what needs attention, the
screen and the JSON, and what is said when a service does not answer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from deploy.group_reset import CONSUMER_STAGES
from runtime.metrics import DISPATCH_CIRCUITS
from runtime.settings import Settings
from runtime.status import (
    CIRCUITS_METRIC,
    Circuits,
    Status,
    circuit_counts,
    dispatcher_circuits,
    read_status,
)
from runtime.status_database import ActiveReplay, DatabaseFacts, RelayBacklog, database_address
from runtime.status_kafka import (
    GROUP_INPUTS,
    CronLeader,
    GroupLag,
    KafkaFacts,
    PartitionLag,
    TopicState,
)
from runtime.status_text import age, attention, format_status, status_json
from runtime.topic_catalogue import TopicShape, deployed_catalogue, drift
from schemas.topics import DEAD_LETTERS, RAW_EVENTS

pytestmark = pytest.mark.unit

CIRCUITS = Circuits("http://127.0.0.1:9102/metrics", by_state={"open": 1, "closed": 2})


def test_a_topic_as_declared_has_no_drift() -> None:
    [spec] = [s for s in deployed_catalogue(Settings()) if s.suffix == "raw-events"]
    assert drift(spec, TopicShape(6, 1, spec.configs()), replication_factor=1) == ()


def test_drift_names_each_difference_and_a_missing_topic() -> None:
    [spec] = [s for s in deployed_catalogue(Settings()) if s.suffix == "dead-letters"]
    configs = {**spec.configs(), "cleanup.policy": "compact"}
    del configs["retention.ms"]

    found = drift(spec, TopicShape(1, 1, configs), replication_factor=3)

    assert found == (
        "partitions: catalogue 3, cluster 1",
        "replication: catalogue 3, cluster 1",
        "cleanup.policy: catalogue delete, cluster compact",
        f"retention.ms: catalogue {DEAD_LETTERS.retention_ms}, cluster None",
    )
    assert drift(spec, None, replication_factor=1) == ("missing",)


def kafka_facts(**changes: Any) -> KafkaFacts:
    facts = KafkaFacts(
        "127.0.0.1:19092",
        True,
        brokers=1,
        topics=(
            TopicState("raw-events", "tl.raw-events", 6, ()),
            TopicState("routed-events", "tl.routed-events", None, ("missing",)),
            TopicState(
                "dead-letters", "tl.dead-letters", 1, ("partitions: catalogue 3, cluster 1",)
            ),
        ),
        groups=(
            GroupLag(
                "processors",
                "tl.processors",
                "tl.raw-events",
                (),
                (PartitionLag(0, 5, 8, 3), PartitionLag(1, None, 4, 4)),
            ),
            GroupLag(
                "dispatchers", "tl.dispatchers", "tl.routed-events", ("d-1",), (), "topic missing"
            ),
            GroupLag(
                "replay 42",
                "tl.replay-42",
                "tl.raw-events",
                (),
                (PartitionLag(0, 8, 8, 0, None),),
                "running, scanned 10 of 20",
            ),
        ),
        cron_leader=CronLeader("leader", "tl.cron-consumer", "/127.0.0.1"),
        dead_letters=6,
    )
    return replace(facts, **changes)


def database_facts(**changes: Any) -> DatabaseFacts:
    facts = DatabaseFacts(
        "127.0.0.1:15432/tl",
        True,
        relay=RelayBacklog(waiting=2, oldest_s=125.0, set_aside=1),
        replays=(ActiveReplay("42", "running", 10, 20),),
    )
    return replace(facts, **changes)


def test_the_screen_shows_every_fact_in_a_few_lines() -> None:
    status = Status("tl", kafka_facts(), database_facts(), CIRCUITS)

    printed = format_status(status).splitlines()

    assert printed[:3] == [
        "kafka: 127.0.0.1:19092, 1 broker",
        "postgresql: 127.0.0.1:15432/tl",
        "attention: topics missing: routed-events (`triggerline topics ensure`); topics differ "
        "from the catalogue: dead-letters; processors: 7 records wait and no member reads them; "
        "relay backlog: 2 outbox rows, the oldest 2 m 5 s old; 1 outbox rows set aside as "
        "unpublishable; 1 open circuits",
    ]
    assert printed[3:] == [
        "topics (prefix tl):",
        "  raw-events     partitions   6  ok",
        "  routed-events  MISSING",
        "  dead-letters   partitions   1  DRIFT partitions: catalogue 3, cluster 1",
        "consumer groups (lag: records not yet committed; per partition, partition:lag):",
        "  processors   lag        7  members 0  0:3 1:4",
        "  dispatchers  lag        0  members 1  (topic missing)",
        "  replay 42    lag        0  members 0  0:0 (running, scanned 10 of 20)",
        "cron leader: tl.cron-consumer on /127.0.0.1",
        "relay backlog: 2 outbox rows waiting, the oldest for 2 m 5 s; 1 set aside",
        "open circuits: 1 (open 1, closed 2; from http://127.0.0.1:9102/metrics)",
        "dead letters: 6",
    ]
    assert len(printed) <= 25


def test_an_unreachable_broker_is_the_first_line_and_the_rest_is_still_shown() -> None:
    kafka = KafkaFacts("127.0.0.1:9", False, "no answer (KafkaConnectionError)")
    status = Status("tl", kafka, database_facts(), Circuits("u", unknown="no answer"))

    printed = format_status(status).splitlines()

    assert printed[0] == "KAFKA UNREACHABLE: 127.0.0.1:9: no answer (KafkaConnectionError)"
    assert "postgresql: 127.0.0.1:15432/tl" in printed
    assert "relay backlog: 2 outbox rows waiting, the oldest for 2 m 5 s; 1 set aside" in printed
    assert "dead letters: unknown (Kafka does not answer)" in printed
    assert "open circuits: unknown (no answer)" in printed
    assert not any(line.startswith("topics") for line in printed)
    assert status.reachable is False


def test_an_unreachable_database_is_said_first_too() -> None:
    database = DatabaseFacts("db:5432/tl", False, problem="OperationalError: refused")
    status = Status("tl", kafka_facts(), database, CIRCUITS)

    printed = format_status(status).splitlines()

    assert printed[0] == "POSTGRESQL UNREACHABLE: db:5432/tl: OperationalError: refused"
    assert "relay backlog: unknown (PostgreSQL could not be read)" in printed
    assert status.reachable is False


def test_nothing_needs_attention_in_a_healthy_pipeline() -> None:
    topic = TopicState("raw-events", "tl.raw-events", 6, ())
    group = GroupLag("processors", "p", "t", ("w-1",), (PartitionLag(0, 1, 9, 8, "w-1"),))
    healthy = Status(
        "tl",
        kafka_facts(topics=(topic,), groups=(group,)),
        database_facts(relay=RelayBacklog(waiting=1, oldest_s=0.5, set_aside=0)),
        Circuits("u", by_state={"open": 0, "half_open": 0, "closed": 4}),
    )
    assert attention(healthy) == []
    assert "attention: none" in format_status(healthy)


def test_the_json_carries_the_same_facts_and_totals() -> None:
    status = Status("tl", kafka_facts(), database_facts(), CIRCUITS)

    body = orjson.loads(orjson.dumps(status_json(status)))

    assert body["reachable"] is True
    assert body["attention"] == attention(status)
    processors = body["kafka"]["groups"][0]
    assert (processors["name"], processors["lag"], processors["members"]) == ("processors", 7, [])
    assert processors["partitions"][1] == {
        "partition": 1,
        "committed": None,
        "end": 4,
        "lag": 4,
        "owner": None,
    }
    assert body["kafka"]["topics"][1] == {
        "suffix": "routed-events",
        "name": "tl.routed-events",
        "partitions": None,
        "drift": ["missing"],
    }
    assert body["database"]["relay"] == {"waiting": 2, "oldest_s": 125.0, "set_aside": 1}
    assert body["circuits"]["open"] == 1
    assert body["kafka"]["dead_letters"] == 6


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.4, "0 s"),
        (59.9, "59 s"),
        (125, "2 m 5 s"),
        (3 * 3600 + 240, "3 h 4 m"),
        (90000, "1 d 1 h"),
    ],
)
def test_ages_show_their_two_largest_units(seconds: float, shown: str) -> None:
    assert age(seconds) == shown


def test_the_database_address_leaves_out_the_password() -> None:
    address = database_address("postgresql://tl:s3cret@db.example:6432/triggerline")
    assert address == "db.example:6432/triggerline"


def test_the_groups_include_the_stages_groups_reset_moves() -> None:
    assert list(GROUP_INPUTS[:3]) == [(stage.name, stage.topic) for stage in CONSUMER_STAGES]
    assert GROUP_INPUTS[0] == ("processors", RAW_EVENTS)


def test_circuits_are_counted_by_state_from_the_dispatchers_metrics() -> None:
    assert next(iter(DISPATCH_CIRCUITS.describe())).name == CIRCUITS_METRIC
    registry = CollectorRegistry()
    gauge = Gauge(CIRCUITS_METRIC, "circuits", ["target_kind", "state"], registry=registry)
    gauge.labels("http", "open").set(2)
    gauge.labels("kafka", "open").set(1)
    gauge.labels("http", "closed").set(7)
    Gauge("other_metric", "x", registry=registry).set(5)
    counts = circuit_counts(generate_latest(registry).decode())
    assert counts == {"open": 3, "half_open": 0, "closed": 7}


async def test_circuits_of_a_dispatcher_that_does_not_answer_are_unknown() -> None:
    # Port 9 (discard) on loopback: nothing listens there.
    circuits = await dispatcher_circuits(Settings().override(dispatcher__metrics_port=9))
    assert circuits.by_state is None
    assert circuits.open is None
    assert circuits.unknown is not None
    assert "127.0.0.1:9/metrics" in circuits.unknown


async def test_services_that_do_not_answer_are_reported_not_raised() -> None:
    # Port 9 (discard) on loopback: no broker, no database there.
    settings = Settings().override(
        kafka__bootstrap_servers="127.0.0.1:9",
        database__url="postgresql://postgres@127.0.0.1:9/tl",
        dispatcher__metrics_port=9,
    )

    status = await read_status(settings)

    assert (status.kafka.reachable, status.database.reachable) == (False, False)
    assert status.kafka.problem == "no answer (KafkaConnectionError)"
    assert status.database.problem is not None
    assert status.database.problem.startswith("OperationalError")
    assert format_status(status).splitlines()[:2] == [
        "KAFKA UNREACHABLE: 127.0.0.1:9: no answer (KafkaConnectionError)",
        f"POSTGRESQL UNREACHABLE: 127.0.0.1:9/tl: {status.database.problem}",
    ]
