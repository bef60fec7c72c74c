"""Processor workers joining and leaving mid-stream: does every event still route exactly once?

Each run gets its own topics on the local broker. One worker routes a steady stream (20 events
every 50 ms, less than one worker can handle); a second worker joins, takes part of the
partitions, and is stopped with SIGTERM, while the stream goes on. Workers that exit on their
own are restarted, as `triggerline run` does. Once the stream stops and the group has
committed every raw event (or two minutes pass), the run counts what reached the routed topic:

    python -m benchmarks.processor_rebalance_soak --runs 10

A run keeps to exactly once when every event sent was routed once. The figures go in the
README's performance section.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from runtime.settings import Settings, get_settings
from tests.integration.isolation import drop_topics, isolated_settings
from tests.integration.polling import eventually
from tests.integration.processor_support import (
    Records,
    owned_by,
    processor_workers,
    routed_events,
    slack_message,
    slack_trigger,
    triggers_on_every_partition,
    uncommitted_raw_events,
)

SETTLE_S = 120.0


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


async def produce_until(
    records: Records, triggers: list[str], stop: asyncio.Event, sent: set[str]
) -> None:
    while not stop.is_set():
        ids = [f"Ev{uuid.uuid4().hex}" for _ in range(20)]
        await records.raw(
            *(slack_message(triggers[n % len(triggers)], i) for n, i in enumerate(ids))
        )
        sent.update(ids)
        await asyncio.sleep(0.05)


async def routed_count(settings: Settings) -> int:
    return len(await routed_events(settings))


async def routed_grows_by(settings: Settings, count: int) -> None:
    target = await routed_count(settings) + count

    async def grown() -> int | None:
        routed = await routed_count(settings)
        return routed if routed >= target else None

    await eventually(grown, timeout_s=SETTLE_S)


async def settled(settings: Settings, sent: set[str]) -> None:
    """Until the group committed every raw event and as many were routed, or SETTLE_S."""

    async def done() -> bool | None:
        if await uncommitted_raw_events(settings):
            return None
        return True if await routed_count(settings) >= len(sent) else None

    # On a timeout the run's outcome says what is missing.
    with contextlib.suppress(TimeoutError):
        await eventually(done, timeout_s=SETTLE_S, interval_s=1.0)


async def one_run(base: Settings) -> RunOutcome:
    settings = await isolated_settings(base, base.database_url.get_secret_value())
    started = time.monotonic()
    triggers = triggers_on_every_partition()
    sent: set[str] = set()
    stop = asyncio.Event()
    try:
        async with Records(settings) as records:
            for trigger_id in triggers:
                await records.config(slack_trigger(trigger_id))
            with processor_workers(settings, 1) as group:
                supervising = asyncio.create_task(group.supervise())
                producing = asyncio.create_task(produce_until(records, triggers, stop, sent))
                try:
                    await routed_grows_by(settings, 200)
                    joining = group.start()

                    async def joined() -> set[str] | None:
                        return await owned_by(joining) or None

                    await eventually(joined, timeout_s=SETTLE_S)
                    await routed_grows_by(settings, 200)
                    await group.stop_worker(joining)
                    await routed_grows_by(settings, 200)
                finally:
                    stop.set()
                    await producing
                await settled(settings, sent)
                supervising.cancel()
                restarts = group.restarts
        routed = Counter(e.id for e in await routed_events(settings))
        return RunOutcome(
            sent=len(sent),
            routed=sum(routed.values()),
            missing=len(sent - routed.keys()),
            repeated=sum(1 for n in routed.values() if n > 1),
            uncommitted=await uncommitted_raw_events(settings),
            restarts=restarts,
            seconds=time.monotonic() - started,
        )
    finally:
        await drop_topics(settings)


async def soak(runs: int) -> list[RunOutcome]:
    base = get_settings()
    outcomes = []
    for n in range(1, runs + 1):
        outcome = await one_run(base)
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
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    outcomes = asyncio.run(soak(args.runs))
    kept = sum(o.exactly_once for o in outcomes)
    print(
        f"exactly once in {kept} of {len(outcomes)} runs; "
        f"events missing in {sum(o.missing > 0 for o in outcomes)}, "
        f"repeated in {sum(o.repeated > 0 for o in outcomes)}, "
        f"raw records left uncommitted in {sum(bool(o.uncommitted) for o in outcomes)}; "
        f"worker restarts {sum(o.restarts for o in outcomes)}"
    )


if __name__ == "__main__":
    main()
