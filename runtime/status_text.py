"""`triggerline status` as one screen, and as one JSON object (`--json`).

The screen is read top-down in a few seconds: what did not answer comes first, then what needs
attention, then the details (topics, consumer groups, the cron leader, the relay backlog, open
circuits, dead letters).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from runtime.status import Status
from runtime.status_kafka import GroupLag, TopicState

# Outbox rows waiting longer than this mean the relay is not publishing.
RELAY_STALL_S = 60.0


def attention(status: Status) -> list[str]:
    """What an operator should look at, most urgent first; empty when nothing needs it."""
    found: list[str] = []
    kafka, database = status.kafka, status.database
    if not kafka.reachable:
        found.append(f"Kafka at {kafka.address} does not answer")
    elif kafka.problem:
        found.append(kafka.problem)
    if not database.reachable:
        found.append(f"PostgreSQL at {database.address} does not answer")
    elif database.problem:
        found.append(database.problem)
    missing = [t.suffix for t in kafka.topics if t.partitions is None]
    drifted = [t.suffix for t in kafka.topics if t.partitions is not None and t.drift]
    if missing:
        found.append(f"topics missing: {', '.join(missing)} (`triggerline topics ensure`)")
    if drifted:
        found.append(f"topics differ from the catalogue: {', '.join(drifted)}")
    for group in kafka.groups:
        if group.lag and not group.members:
            found.append(f"{group.name}: {group.lag} records wait and no member reads them")
    relay = database.relay
    if relay is not None and relay.oldest_s is not None and relay.oldest_s > RELAY_STALL_S:
        found.append(
            f"relay backlog: {relay.waiting} outbox rows, the oldest {age(relay.oldest_s)} old"
        )
    if relay is not None and relay.set_aside:
        found.append(f"{relay.set_aside} outbox rows set aside as unpublishable")
    if status.circuits.open:
        found.append(f"{status.circuits.open} open circuits")
    return found


def format_status(status: Status) -> str:
    """What `triggerline status` prints."""
    kafka, database = status.kafka, status.database
    lines: list[str] = []
    # Whatever did not answer is the first thing said.
    if not kafka.reachable:
        lines.append(f"KAFKA UNREACHABLE: {kafka.address}: {kafka.problem}")
    if not database.reachable:
        lines.append(f"POSTGRESQL UNREACHABLE: {database.address}: {database.problem}")
    if kafka.reachable:
        brokers = "1 broker" if kafka.brokers == 1 else f"{kafka.brokers} brokers"
        lines.append(f"kafka: {kafka.address}, {brokers}")
    if database.reachable:
        lines.append(f"postgresql: {database.address}")
    needs = attention(status)
    lines.append(f"attention: {'; '.join(needs)}" if needs else "attention: none")
    if kafka.reachable:
        lines += _topics(kafka.topics, status.prefix)
        lines += _groups(kafka.groups)
    lines.append(f"cron leader: {_cron_leader(status)}")
    lines.append(f"relay backlog: {_relay(status)}")
    lines.append(f"open circuits: {_circuits(status)}")
    lines.append(f"dead letters: {_dead_letters(status)}")
    return "\n".join(lines)


def _topics(topics: tuple[TopicState, ...], prefix: str) -> list[str]:
    lines = [f"topics (prefix {prefix}):"]
    width = max((len(t.suffix) for t in topics), default=0)
    for topic in topics:
        if topic.partitions is None:
            lines.append(f"  {topic.suffix:<{width}}  MISSING")
            continue
        shown = f"DRIFT {'; '.join(topic.drift)}" if topic.drift else "ok"
        lines.append(f"  {topic.suffix:<{width}}  partitions {topic.partitions:>3}  {shown}")
    return lines


def _groups(groups: tuple[GroupLag, ...]) -> list[str]:
    lines = ["consumer groups (lag: records not yet committed; per partition, partition:lag):"]
    width = max((len(g.name) for g in groups), default=0)
    for group in groups:
        parts = [
            f"  {group.name:<{width}}  lag {group.lag:>8}  members {len(group.members)} ",
            *(f"{p.partition}:{p.lag}" for p in group.partitions),
        ]
        if group.note:
            parts.append(f"({group.note})")
        lines.append(" ".join(parts))
    return lines


def _cron_leader(status: Status) -> str:
    leader = status.kafka.cron_leader
    if leader is None:
        return "unknown (Kafka does not answer)"
    if leader.state == "leader":
        return f"{leader.client_id} on {leader.host}"
    return f"{leader.state} ({leader.detail})"


def _relay(status: Status) -> str:
    relay = status.database.relay
    if relay is None:
        return "unknown (PostgreSQL could not be read)"
    waiting = f"{relay.waiting} outbox rows waiting"
    if relay.oldest_s is not None:
        waiting += f", the oldest for {age(relay.oldest_s)}"
    if relay.set_aside:
        waiting += f"; {relay.set_aside} set aside"
    return waiting


def _circuits(status: Status) -> str:
    circuits = status.circuits
    if circuits.by_state is None:
        return f"unknown ({circuits.unknown})"
    states = ", ".join(f"{name} {count}" for name, count in circuits.by_state.items())
    return f"{circuits.open} ({states}; from {circuits.source})"


def _dead_letters(status: Status) -> str:
    kafka = status.kafka
    if not kafka.reachable:
        return "unknown (Kafka does not answer)"
    return "unknown (topic missing)" if kafka.dead_letters is None else str(kafka.dead_letters)


def age(seconds: float) -> str:
    """A duration in its two largest units: `45 s`, `2 m 5 s`, `3 h 4 m`, `2 d 1 h`."""
    whole = int(seconds)
    for unit, size, smaller, small_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            return f"{whole // size} {unit} {whole % size // small_size} {smaller}"
    if whole >= 60:
        return f"{whole // 60} m {whole % 60} s"
    return f"{whole} s"


def status_json(status: Status) -> dict[str, Any]:
    """What `triggerline status --json` prints: the same facts, with totals and `attention`."""
    body = dataclasses.asdict(status)
    body["reachable"] = status.reachable
    body["attention"] = attention(status)
    for group, shown in zip(status.kafka.groups, body["kafka"]["groups"], strict=True):
        shown["lag"] = group.lag
    body["circuits"]["open"] = status.circuits.open
    return body
