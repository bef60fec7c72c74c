"""Processor workers joining and leaving mid-stream, run after run: does every event still route
exactly once, and how often does a worker have to stop itself?

Each run gets its own topics on the local broker. One worker routes a steady stream (20 events
every 50 ms, two of them resends); a second worker joins, takes part of the partitions and
leaves with SIGTERM; a third joins and is killed with SIGKILL. Workers that exit on their own
are restarted, as `triggerline run` does. Once the stream stops and the group has committed
every raw event (or three minutes pass), the run counts what reached the routed topic:

    python -m benchmarks.processor_rebalance_soak --engine faust --runs 10

The batch engine runs the same scenario in the suite (tests/integration/
test_processor_rebalance.py). The figures go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections import Counter
from dataclasses import dataclass

from runtime.settings import Settings, get_settings
from tests.integration.support.isolation import drop_topics, isolated_settings
from tests.integration.support.polling import eventually
from tests.integration.support.processor_outputs import (
    all_routed,
    routed_events,
    routed_grows_by,
    uncommitted_raw_events,
)
from tests.integration.support.processor_records import (
    Records,
    Sent,
    one_trigger_per_partition,
    produce_until,
)
from tests.integration.support.processor_workers import ENGINES, Worker, owned_by, processor_workers

SETTLE_S = 180.0


@dataclass
class RunOutcome:
    sent: int
    routed: int
    missing: int
    repeated: int
    uncommitted: dict[int, int]
    restarts: int
    seconds: float

    @property
    def exactly_once(self) -> bool:
        return self.missing == 0 and self.repeated == 0 and not self.uncommitted


async def joined(worker: Worker) -> None:
    async def owning() -> set[str] | None:
        return await owned_by(worker) or None

    await eventually(owning, timeout_s=SETTLE_S)


async def one_run(base: Settings, engine: str) -> RunOutcome:
    settings = await isolated_settings(base, base.database.url.get_secret_value())
    started = time.monotonic()
    sent = Sent(set(), set())
    stop = asyncio.Event()
    try:
        async with Records(settings) as records:
            triggers = await one_trigger_per_partition(records)
            env = {"TRIGGERLINE_PROCESSOR_SESSION_TIMEOUT_S": "6"}
            with processor_workers(settings, 1, engine, **env) as group:
                supervising = asyncio.create_task(group.supervise())
                producing = asyncio.create_task(produce_until(records, triggers, stop, sent))
                try:
                    await routed_grows_by(settings, 200, SETTLE_S)
                    for signum in (signal.SIGTERM, signal.SIGKILL):
                        joining = group.start()
                        await joined(joining)
                        await routed_grows_by(settings, 200, SETTLE_S)
                        await group.stop_worker(joining, signum)
                        await routed_grows_by(settings, 200, SETTLE_S)
                finally:
                    stop.set()
                    await producing
                # On a timeout the run's outcome says what is missing.
                with contextlib.suppress(AssertionError):
                    await all_routed(settings, len(sent.events), SETTLE_S)
                supervising.cancel()
                restarts = group.restarts
        routed = Counter(e.id for e in await routed_events(settings))
        return RunOutcome(
            sent=len(sent.events),
            routed=sum(routed.values()),
            missing=len(sent.events - routed.keys()),
            repeated=sum(1 for n in routed.values() if n > 1),
            uncommitted=await uncommitted_raw_events(settings),
            restarts=restarts,
            seconds=time.monotonic() - started,
        )
    finally:
        await drop_topics(settings)


async def soak(engine: str, runs: int) -> list[RunOutcome]:
    base = get_settings()
    outcomes = []
    for n in range(1, runs + 1):
        outcome = await one_run(base, engine)
        outcomes.append(outcome)
        verdict = "exactly once" if outcome.exactly_once else "NOT exactly once"
        print(
            f"run {n}: {verdict}; sent {outcome.sent}, routed {outcome.routed}, "
            f"missing {outcome.missing}, repeated {outcome.repeated}, "
            f"uncommitted raw records {outcome.uncommitted or 'none'}, "
            f"worker restarts {outcome.restarts}, {outcome.seconds:.0f} s",
            flush=True,
        )
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engine", choices=ENGINES, default="faust")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    outcomes = asyncio.run(soak(args.engine, args.runs))
    kept = sum(o.exactly_once for o in outcomes)
    print(
        f"{args.engine}: exactly once in {kept} of {len(outcomes)} runs; "
        f"events missing in {sum(o.missing > 0 for o in outcomes)}, "
        f"repeated in {sum(o.repeated > 0 for o in outcomes)}, "
        f"raw records left uncommitted in {sum(bool(o.uncommitted) for o in outcomes)}; "
        f"worker restarts {sum(o.restarts for o in outcomes)}"
    )


if __name__ == "__main__":
    main()
