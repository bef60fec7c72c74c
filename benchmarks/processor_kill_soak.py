"""Processor workers killed again and again mid-stream: is every event still routed once, and
decided once?

One worker of the given engine routes a steady stream (20 events every 50 ms, two of them
Slack resends of the batch before). Each cycle kills it twice: once with SIGKILL from outside,
and once from inside, its replacement killing itself right after its n-th Kafka commit (n from
2 to 6), before that transaction's deduplication marks reach its local store. Workers that die
are restarted, as `triggerline run` does. After the last cycle the stream stops, the group
commits everything, and the run counts what reached the routed topic and the delivery log:

    python -m benchmarks.processor_kill_soak --engine batch --kills 30

Every event sent must be routed exactly once with one `routed` decision, and every resend must
be decided `duplicate` once. The tally goes in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections import Counter

from runtime.settings import get_settings
from tests.integration.support.isolation import drop_topics, isolated_settings
from tests.integration.support.polling import eventually
from tests.integration.support.processor_outputs import (
    all_routed,
    processor_decisions,
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
from tests.integration.support.processor_workers import ENGINES, WorkerGroup

SETTLE_S = 180.0
SESSION_TIMEOUT = {"TRIGGERLINE_PROCESSOR_SESSION_TIMEOUT_S": "6"}


def restart_envs(cycles: int) -> list[dict[str, str]]:
    """Every other replacement kills itself after its n-th commit; the others run on."""
    return [
        {"TRIGGERLINE_PROCESSOR_FAULT": f"after-commit:{2 + cycle % 5}"} if n == 0 else {}
        for cycle in range(cycles)
        for n in (0, 1)
    ]


async def exits_reach(group: WorkerGroup, count: int) -> None:
    async def reached() -> bool | None:
        return True if len(group.exits) >= count else None

    await eventually(reached, timeout_s=SETTLE_S, interval_s=0.2)


async def soak(engine: str, kills: int) -> None:
    base = get_settings()
    settings = await isolated_settings(base, base.database.url.get_secret_value())
    cycles = max(1, kills // 2)
    sent = Sent(set(), set())
    stop = asyncio.Event()
    started = time.monotonic()
    group = WorkerGroup(settings, engine, **SESSION_TIMEOUT)
    try:
        async with Records(settings) as records:
            triggers = await one_trigger_per_partition(records)
            group.start()
            supervising = asyncio.create_task(group.supervise(*restart_envs(cycles)))
            producing = asyncio.create_task(produce_until(records, triggers, stop, sent))
            try:
                for cycle in range(cycles):
                    await routed_grows_by(settings, 100, timeout_s=SETTLE_S)
                    group.workers[-1].process.send_signal(signal.SIGKILL)
                    # The replacement commits a few times, then kills itself.
                    await exits_reach(group, 2 * cycle + 2)
                    print(f"cycle {cycle + 1}: {len(group.exits)} kills so far", flush=True)
                await routed_grows_by(settings, 100, timeout_s=SETTLE_S)
            finally:
                stop.set()
                await producing
            await all_routed(settings, len(sent.events), SETTLE_S)
            supervising.cancel()
        routed = Counter(e.id for e in await routed_events(settings))
        decisions = await processor_decisions(settings)
        routed_decisions = Counter(d.event_id for d in decisions if d.outcome == "routed")
        duplicates = Counter(d.event_id for d in decisions if d.outcome == "duplicate")
        uncommitted = await uncommitted_raw_events(settings)
    finally:
        group.stop()
        await drop_topics(settings)
    by_signal = len(group.exits[::2])
    from_inside = len(group.exits) - by_signal
    missing = len(sent.events - routed.keys())
    repeated = sum(1 for n in routed.values() if n > 1)
    wrong_decisions = sum((routed_decisions - Counter(sent.events)).values()) + sum(
        (Counter(sent.events) - routed_decisions).values()
    )
    wrong_duplicates = sum((duplicates - Counter(sent.resent)).values()) + sum(
        (Counter(sent.resent) - duplicates).values()
    )
    exits = Counter(group.exits)
    print(
        f"{engine}: {len(group.exits)} kills ({by_signal} SIGKILL from outside, {from_inside} "
        f"between a Kafka commit and the store write; exit statuses {dict(exits)}); "
        f"sent {len(sent.events)} events and {len(sent.resent)} resends; "
        f"missing {missing}, routed more than once {repeated}, "
        f"routed decisions off {wrong_decisions}, duplicate decisions off {wrong_duplicates}, "
        f"uncommitted raw records {uncommitted or 'none'}; "
        f"{time.monotonic() - started:.0f} s, load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engine", choices=ENGINES, default="batch")
    parser.add_argument("--kills", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(soak(args.engine, args.kills))


if __name__ == "__main__":
    main()
