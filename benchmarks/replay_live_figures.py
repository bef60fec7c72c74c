"""The figures of benchmarks/replay_live_latency.py: one phase of live load measured, and the
table comparing the phase without a replay to the phase with one."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from benchmarks.dispatch_end_to_end import (
    cpu_seconds,
    cpu_shares,
    percentile,
    send_at_rate,
    signed_requests,
)
from benchmarks.dispatch_throughput import reset, stats
from tests.integration.support.polling import eventually

if TYPE_CHECKING:
    from benchmarks.replay_live_latency import Options

PASS_RATIO = 2.0


@dataclass(slots=True)
class LivePhase:
    # The send loop's window, epoch seconds.
    sent_from: float
    sent_until: float
    latencies_ms: list[float]
    # Each latency's event's acceptance by ingest (the CloudEvent's `receivedat`), epoch seconds.
    accepted_at: list[float]
    cpu_percent: dict[str, int]
    load_before: float
    load_after: float
    # The sender's round trips to ingest, ms.
    answers_ms: list[float]
    # Event id -> the target's receipt, epoch seconds.
    received: dict[str, float]
    # Per event, ms: (ingest acceptance -> routed record appended, routed record -> receipt);
    # read from the routed topic once the run is over.
    legs: list[tuple[float, float]] = field(default_factory=list)

    def window(self, start: float, end: float) -> list[float]:
        """Latencies of the events ingest accepted within [start, end]."""
        return [
            latency
            for latency, at in zip(self.latencies_ms, self.accepted_at, strict=True)
            if start <= at <= end
        ]


@dataclass(frozen=True, slots=True)
class ReplayFigures:
    # GET /replays/{id} once the replay settled (or when waiting for it gave up).
    shown: dict[str, Any]
    # The replay's `selected` count when the live phase's last event had been delivered.
    selected_at_live_end: int
    # The history target's statistics: the replayed deliveries.
    target: dict[str, Any]

    def bounds(self) -> tuple[float, float | None]:
        """When the replay's runner started and finished (None while it runs), epoch seconds."""
        started = datetime.fromisoformat(self.shown["started_at"]).timestamp()
        finished = self.shown["finished_at"]
        return started, None if finished is None else datetime.fromisoformat(finished).timestamp()

    def selected_per_s(self) -> float:
        """Copies the runner selected and sent, over its wall time."""
        started, finished = self.bounds()
        return float(self.shown["counts"]["selected"]) / ((finished or time.time()) - started)

    def delivered_per_s(self) -> float:
        """Replayed deliveries the history target received, from its first to its last."""
        count, first, last = self.target["count"], self.target["first"], self.target["last"]
        return float(count) / (last - first) if count > 1 and last > first else 0.0


async def live_phase(target: str, hook: str, options: Options, pids: dict[str, int]) -> LivePhase:
    """Signed webhooks at `options.rate` for `options.phase_s`, until all are delivered."""
    await reset(target)
    requests = signed_requests(int(options.rate * options.phase_s))
    load_before = os.getloadavg()[0]
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    sent_from = time.time()
    answers = await send_at_rate(hook, requests, options.rate)
    sent_until = time.time()

    async def delivered() -> dict[str, Any] | None:
        got = await stats(target)
        return got if got["count"] >= len(requests) else None

    done = await eventually(delivered, 300, 0.5)
    return LivePhase(
        sent_from=sent_from,
        sent_until=sent_until,
        latencies_ms=done["latencies_ms"],
        accepted_at=done["accepted_at"],
        cpu_percent=cpu_shares(pids, cpu_before, time.monotonic() - started),
        load_before=load_before,
        load_after=os.getloadavg()[0],
        answers_ms=answers,
        received=done["received"],
    )


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _row(
    phase: str,
    seconds: float,
    latencies: list[float],
    *,
    baseline_p99: float,
    replay: str,
    cpu: str,
    load: str,
) -> str:
    if not latencies:
        return f"| {phase} | {seconds:.0f} s | 0 | - | - | - | {replay} | {cpu} | {load} |"
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    return (
        f"| {phase} | {seconds:.0f} s | {len(latencies):,} | {_ms(p50)} | {_ms(p99)} "
        f"| {p99 / baseline_p99:.2f} | {replay} | {cpu} | {load} |"
    )


def _p50_p99(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{_ms(percentile(values, 0.50))} / {_ms(percentile(values, 0.99))}"


def _legs(phase: str, figures: LivePhase) -> str:
    to_routed = [lag for lag, _ in figures.legs]
    to_target = [lag for _, lag in figures.legs]
    return (
        f"| {phase} | {_p50_p99(figures.answers_ms)} | {_p50_p99(to_routed)} "
        f"| {_p50_p99(to_target)} |"
    )


def _cpu(phase: LivePhase) -> str:
    return ", ".join(f"{name} {share}" for name, share in phase.cpu_percent.items())


def print_report(
    *,
    command: str,
    options: Options,
    seeded_s: float,
    same_partition: bool,
    baseline: LivePhase,
    during: LivePhase,
    replay: ReplayFigures,
) -> None:
    base_p99 = percentile(baseline.latencies_ms, 0.99)
    started, finished = replay.bounds()
    replay_end = finished or time.time()
    overlap = max(0.0, min(during.sent_until, replay_end) - max(during.sent_from, started))
    first, last = replay.target["first"], replay.target["last"]
    while_delivered = during.window(first, last) if replay.target["count"] else []
    rates = f"{replay.selected_per_s():,.0f} / {replay.delivered_per_s():,.0f}"
    counts = replay.shown["counts"]
    lines = [
        f"command: {command}",
        f"cpus: {os.cpu_count()}; load average (1m, 5m, 15m) at the end: "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg()),
        f"history: {options.history:,} events seeded and delivered in {seeded_s:.0f} s"
        f" ({options.history / seeded_s:,.0f}/s); live and history triggers on "
        + ("the same raw partition" if same_partition else "different raw partitions"),
        "",
        "| phase | length | live events | live p50 | live p99 | p99 / A's p99 "
        "| replay selected/s / delivered/s | CPU, % of one core | load 1m before -> after |",
        "|---|---|---|---|---|---|---|---|---|",
        _row(
            "A: live only",
            baseline.sent_until - baseline.sent_from,
            baseline.latencies_ms,
            baseline_p99=base_p99,
            replay="-",
            cpu=_cpu(baseline),
            load=f"{baseline.load_before:.2f} -> {baseline.load_after:.2f}",
        ),
        _row(
            "B: live + replay",
            during.sent_until - during.sent_from,
            during.latencies_ms,
            baseline_p99=base_p99,
            replay=rates,
            cpu=_cpu(during),
            load=f"{during.load_before:.2f} -> {during.load_after:.2f}",
        ),
        _row(
            "B, events accepted while replayed copies were delivered",
            max(0.0, min(last, during.sent_until) - max(first, during.sent_from)),
            while_delivered,
            baseline_p99=base_p99,
            replay=rates,
            cpu="",
            load="",
        ),
        "",
        "| phase | sender's ingest answer p50 / p99 | ingest -> routed p50 / p99 "
        "| routed -> target p50 / p99 |",
        "|---|---|---|---|",
        _legs("A: live only", baseline),
        _legs("B: live + replay", during),
        "",
        f"replay: state {replay.shown['state']}, settled {replay.shown['settled']}; selected "
        f"{counts['selected']:,} of {counts['to_scan']:,} scanned, routed {counts['routed']:,},"
        f" delivered {counts['delivered']:,}, failed {counts['failed']:,}; asked"
        f" {options.replay_rate:,.0f}/s, at most {options.transaction_events:,} copies per"
        f" transaction; runner ran {replay_end - started:.1f} s"
        + ("" if finished else " (still running)"),
        f"overlap: the replay ran during {overlap:.1f} s of live phase B's"
        f" {during.sent_until - during.sent_from:.1f} s; replayed deliveries reached the target"
        f" for {max(0.0, last - first):.1f} s; {replay.selected_at_live_end:,} selected when"
        " B's live events were all delivered",
    ]
    ratio = percentile(during.latencies_ms, 0.99) / base_p99
    verdict = "within" if ratio <= PASS_RATIO else "over"
    lines.append(f"live p99 during the replay is {ratio:.2f}x the baseline: {verdict} 2x")
    print("\n".join(lines))
