"""The pipeline at a glance, for `triggerline status` and the console's ops page (one source, so
both always show the same thing).

Three sources are read at once, and one that does not answer is reported as such while the
others are still shown:

- Kafka (runtime/status_kafka.py): the catalogue topics and their drift, each consumer group's
  members and lag per partition, the cron leader and the dead letters' count.
- PostgreSQL (runtime/status_database.py): the outbox rows the relay has not yet published to
  the trigger-config topic, and the replays in progress (whose consumer groups are shown).
- The dispatcher on this host: its circuit breakers live in its memory and are exported on its
  ops port (`triggerline_dispatcher_circuits`), so they are read from
  http://127.0.0.1:TRIGGERLINE_DISPATCHER_METRICS_PORT/metrics; a dispatcher elsewhere, or one
  not running, is reported as unknown, never as zero.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from runtime.metrics import DISPATCH_CIRCUITS
from runtime.settings import Settings
from runtime.status_database import DatabaseFacts, read_database
from runtime.status_kafka import KafkaFacts, read_kafka

# A metrics endpoint that has not answered by then is reported unknown: the page stays fast.
METRICS_TIMEOUT_S = 0.5
CIRCUIT_STATES = ("open", "half_open", "closed")
CIRCUITS_METRIC = next(iter(DISPATCH_CIRCUITS.describe())).name


@dataclass(frozen=True, slots=True)
class Circuits:
    """Circuit breakers by state, or why they are unknown."""

    source: str
    by_state: dict[str, int] | None = None
    unknown: str | None = None

    @property
    def open(self) -> int | None:
        return None if self.by_state is None else self.by_state.get("open", 0)


@dataclass(frozen=True, slots=True)
class Status:
    prefix: str
    kafka: KafkaFacts
    database: DatabaseFacts
    circuits: Circuits

    @property
    def reachable(self) -> bool:
        """Whether both Kafka and PostgreSQL answered; `triggerline status` exits 1 if not."""
        return self.kafka.reachable and self.database.reachable


async def read_status(settings: Settings) -> Status:
    """Never raises for an unreachable service: the status says which one did not answer."""
    circuits = asyncio.create_task(dispatcher_circuits(settings))
    try:
        database = await read_database(settings)
        kafka = await read_kafka(settings, replays=database.replays)
    except BaseException:
        circuits.cancel()
        raise
    return Status(settings.topics.prefix, kafka, database, await circuits)


async def dispatcher_circuits(settings: Settings) -> Circuits:
    """The circuit breakers of the dispatcher whose ops port is on this host."""
    url = f"http://127.0.0.1:{settings.dispatcher.metrics_port}/metrics"
    try:
        async with httpx.AsyncClient(timeout=METRICS_TIMEOUT_S) as client:
            response = await client.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return Circuits(url, unknown=f"no dispatcher metrics at {url} ({type(exc).__name__})")
    return Circuits(url, by_state=circuit_counts(response.text))


def circuit_counts(metrics: str) -> dict[str, int]:
    """Circuit breakers by state, summed over target kinds, from a Prometheus text page."""
    counts = dict.fromkeys(CIRCUIT_STATES, 0)
    for family in text_string_to_metric_families(metrics):
        if family.name != CIRCUITS_METRIC:
            continue
        for sample in family.samples:
            state = sample.labels.get("state", "")
            counts[state] = counts.get(state, 0) + int(sample.value)
    return counts
