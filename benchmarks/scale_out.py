"""Scale-out under failure: several workers per stage, one of each killed mid-load and restarted.

On the local broker, the event topics get `--partitions` partitions (12), and the run starts
2 ingest processes, 3 processor workers (the default engine), 2 dispatcher workers and the
delivery-log sink, with one http trigger per raw partition delivering to a local target. After
a warm-up, signed webhooks go out at `--rate` per second (1,000) for `--duration` seconds;
at `--kill-at` one processor and one dispatcher get SIGKILL, and at `--restart-at` both start
again. Then the load stops and the pipeline drains. It reports:

- nothing lost: every webhook answered 2xx has a final delivery-log outcome (delivered or
  dead-lettered), read from the delivery-log topic;
- ownership: per stage, the longest time a partition had no owner in its group's assignment, and
  the longest time a partition's records waited with its committed offset standing still, next
  to the session timeout;
- rebalance cost: the consumer lag and end-to-end latency (target receipt minus the time ingest
  accepted the event) before the kill, after it, and after the restart;
- each process's resident memory at the end.

    .venv/bin/python -m benchmarks.scale_out [--rate 1000] [--duration 150] [--kill-at 40] \
        [--restart-at 90] [--partitions 12]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass

import orjson
from pydantic import SecretStr

from benchmarks.dispatch_end_to_end import cpu_seconds, cpu_shares, percentile
from benchmarks.dispatch_throughput import reset, stats, target_process
from benchmarks.group_watch import GroupWatch, ownership_gaps, stalls, watch
from benchmarks.replay_live_latency import listening_pid
from benchmarks.steady_load import (
    Fleet,
    LoadResult,
    covering_triggers,
    rss_mb,
    running,
    scaled_catalogue,
    send_steadily,
)
from deploy import local_kafka, local_postgres
from deploy.migrate import apply_migrations
from deploy.topics import ensure_topics
from runtime.secrets import new_key_setting
from runtime.settings import Settings
from schemas.topics import DELIVERY_LOG, RAW_EVENTS, ROUTED_EVENTS
from tests.integration.support.dispatch_harness import FINAL
from tests.integration.support.isolation import drop_topics, fresh_prefix, scratch_database
from tests.integration.support.polling import eventually
from tests.integration.support.stages import wait_until_ready
from tests.integration.support.topic_reader import read_all

WARMUP_S = 15.0
WINDOW_S = 30.0
TIMELINE_STEP_S = 5.0
# Events accepted this long before a kill may still be in the killed worker's open transaction
# or in-flight delivery, so they count toward the kill's cost, not the steady state.
IN_FLIGHT_S = 5.0
DRAIN_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Options:
    rate: int
    duration_s: float
    kill_at_s: float
    restart_at_s: float
    partitions: int


async def finals(settings: Settings, accepted: set[str]) -> dict[str, str]:
    """Event id -> its final dispatcher outcome, for the accepted events that have one."""
    outcomes: dict[str, str] = {}
    for _, value in await read_all(settings, DELIVERY_LOG.name(settings.topics.prefix)):
        entry = DELIVERY_LOG.decode(value)
        if entry.event_id in accepted and entry.stage == "dispatcher" and entry.outcome in FINAL:
            outcomes[entry.event_id] = entry.outcome
    return outcomes


def window(
    latencies: list[float], accepted_at: list[float], start: float, end: float
) -> dict[str, float]:
    chosen = [lat for lat, at in zip(latencies, accepted_at, strict=True) if start <= at < end]
    if not chosen:
        return {"events": 0}
    return {
        "events": len(chosen),
        "p50_ms": round(percentile(chosen, 0.50), 1),
        "p99_ms": round(percentile(chosen, 0.99), 1),
        "max_ms": round(max(chosen), 1),
    }


def lag_in(w: GroupWatch, start: float, end: float) -> dict[str, int]:
    lags = [s.total_lag for s in w.samples if start <= s.at < end]
    return {"max": max(lags, default=0), "median": sorted(lags)[len(lags) // 2] if lags else 0}


def broker_port(settings: Settings) -> int:
    return int(settings.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


def members_in(w: GroupWatch, start: float, end: float) -> int:
    return min((s.members for s in w.samples if start <= s.at < end), default=0)


def timeline(
    watches: list[GroupWatch],
    lat: list[float],
    at: list[float],
    answers: list[tuple[float, float, int]],
    *,
    start: float,
    end: float,
) -> list[str]:
    """One line per TIMELINE_STEP_S: end-to-end p99 of the events accepted then, ingest's answer
    p99 and the requests not answered 2xx among those due then, each group's members and
    largest total lag."""
    lines = []
    step = start
    while step < end:
        e2e = window(lat, at, step, step + TIMELINE_STEP_S)
        until = step + TIMELINE_STEP_S
        due = [(ms, status) for when, ms, status in answers if step <= when < until]
        answer_p99 = percentile([ms for ms, _ in due], 0.99) if due else 0.0
        refused = sum(1 for _, status in due if status != 200)
        groups = " ".join(
            f"{w.stage} {members_in(w, step, step + TIMELINE_STEP_S)}m "
            f"lag {lag_in(w, step, step + TIMELINE_STEP_S)['max']}"
            for w in watches
        )
        lines.append(
            f"t+{step - start:5.0f}s e2e p99 {e2e.get('p99_ms', 0):8.1f} ms  "
            f"answer p99 {answer_p99:8.1f} ms refused {refused:4d}  {groups}"
        )
        step += TIMELINE_STEP_S
    return lines


async def measure(
    fleet: Fleet, settings: Settings, target: str, triggers: list[str], options: Options
) -> dict[str, object]:
    await wait_until_ready(f"{fleet.ingest_urls()[0]}/readyz", 90)
    await wait_until_ready(f"{fleet.ingest_urls()[1]}/readyz", 90)
    urls = fleet.ingest_urls()
    warm = await send_steadily(urls, triggers, options.rate, WARMUP_S, LoadResult())

    async def warmed() -> bool | None:
        return True if (await stats(target))["count"] >= len(warm.accepted) else None

    await eventually(warmed, 180, 0.5)
    await reset(target)
    watches = [
        GroupWatch(
            "processors", settings.group("processors"), RAW_EVENTS.name(settings.topics.prefix)
        ),
        GroupWatch(
            "dispatchers", settings.group("dispatchers"), ROUTED_EVENTS.name(settings.topics.prefix)
        ),
    ]
    stop = asyncio.Event()
    watching = asyncio.create_task(watch(settings, watches, stop))
    load = LoadResult()
    started = time.time()
    pids = {
        **fleet.pids(),
        "broker": listening_pid(broker_port(settings)),
        "target": listening_pid(int(target.rsplit(":", 1)[1])),
        "load generator": os.getpid(),
    }
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    sending = asyncio.create_task(
        send_steadily(urls, triggers, options.rate, options.duration_s, load)
    )
    await asyncio.sleep(options.kill_at_s)
    killed_at = time.time()
    steady_cpu = cpu_shares(pids, cpu_before, killed_at - started)
    fleet.stages["processors-1"].kill()
    fleet.stages["dispatchers-1"].kill()
    await asyncio.sleep(options.restart_at_s - options.kill_at_s)
    restarted_at = time.time()
    fleet.stages["processors-1"].start()
    fleet.stages["dispatchers-1"].start()
    await sending
    sent_until = time.time()
    accepted = set(load.accepted)

    async def delivered() -> dict[str, str] | None:
        if (await stats(target))["count"] < len(accepted):
            return None
        found = await finals(settings, accepted)
        return found if len(found) == len(accepted) else None

    try:
        outcomes = await eventually(delivered, DRAIN_TIMEOUT_S, 2.0)
    except TimeoutError:
        outcomes = await finals(settings, accepted)
    stop.set()
    await watching
    got = await stats(target)
    lat, at = got["latencies_ms"], got["accepted_at"]
    rss = {name: round(rss_mb(pid)) for name, pid in fleet.pids().items()}
    return {
        "webhooks_due": load.due,
        "answered_2xx": len(accepted),
        "refused": load.refused,
        "refused_by_status": dict(Counter(str(s) for _, _, s in load.answers if s != 200)),
        "first_refusal": load.first_refusal,
        "sender_worst_lateness_s": round(load.worst_lateness_s, 3),
        "ingest_answer_p99_ms": round(percentile(load.answer_ms, 0.99), 1),
        "final_outcomes": {o: list(outcomes.values()).count(o) for o in FINAL},
        "lost": len(accepted - set(outcomes)),
        "target_requests": got["count"],
        "session_timeout_s": settings.processor.session_timeout_s,
        "groups": {
            w.stage: {
                "longest_unassigned_s": round(max(ownership_gaps(w).values(), default=0.0), 1),
                "longest_stall_s": round(
                    max(stalls(w, started, sent_until).values(), default=0.0), 1
                ),
                "lag_before_kill": lag_in(w, started, killed_at),
                "lag_after_kill": lag_in(w, killed_at, killed_at + WINDOW_S),
                "lag_after_restart": lag_in(w, restarted_at, restarted_at + WINDOW_S),
                "members_min": members_in(w, started, sent_until),
            }
            for w in watches
        },
        "end_to_end": {
            "steady_before_kill": window(lat, at, started, killed_at - IN_FLIGHT_S),
            "around_kill": window(lat, at, killed_at - IN_FLIGHT_S, killed_at + WINDOW_S),
            "after_restart": window(lat, at, restarted_at, restarted_at + WINDOW_S),
            "last_window": window(lat, at, sent_until - WINDOW_S, sent_until),
        },
        "cpu_percent_of_one_core_before_kill": steady_cpu,
        "rss_mb_at_end": rss,
        "timeline": timeline(watches, lat, at, load.answers, start=started, end=sent_until),
    }


async def run(base: Settings, options: Options) -> None:
    load_before = os.getloadavg()
    with scratch_database(base.database.url.get_secret_value()) as url:
        apply_migrations(url)
        settings = base.override(
            topics__prefix=fresh_prefix(),
            database__url=SecretStr(url),
            secret_keys=SecretStr(new_key_setting()),
        )
        await ensure_topics(settings, scaled_catalogue(settings, options.partitions))
        try:
            async with target_process() as target:
                triggers = await covering_triggers(settings, target, options.partitions)
                fleet = Fleet(settings, {"TRIGGERLINE_CRON_ENABLED": "false"})
                fleet.add("ingest", 2)
                fleet.add("processors", 3)
                fleet.add("dispatchers", 2)
                fleet.add("dispatchers.sink")
                with running(fleet):
                    figures = await measure(fleet, settings, target, triggers, options)
        finally:
            await drop_topics(settings)
    report = {
        "command": shlex.join(["python", "-m", "benchmarks.scale_out", *sys.argv[1:]]),
        "options": dataclasses.asdict(options),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
        **figures,
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=150.0)
    parser.add_argument("--kill-at", type=float, default=40.0)
    parser.add_argument("--restart-at", type=float, default=90.0)
    parser.add_argument("--partitions", type=int, default=12)
    args = parser.parse_args()
    base_settings = Settings()
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        local_kafka.start(base_settings.local_dir)
    if "DATABASE_URL" not in os.environ:
        local_postgres.start(base_settings.local_dir)
    asyncio.run(
        run(
            base_settings,
            Options(args.rate, args.duration, args.kill_at, args.restart_at, args.partitions),
        )
    )
