"""The replay command's progress bar and summary, written to the terminal.

On a terminal the bar redraws in place; otherwise (a log, a pipe) it prints a line every few
seconds, so that a replay run by a script still shows that it moves.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ingest.api.models import DryRunOut, ReplayOut

BAR_WIDTH = 24
LINE_INTERVAL_S = 5.0


def duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBar:
    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._started = time.monotonic()
        self._first: tuple[int, int] | None = None
        self._printed_at = 0.0

    def update(self, to_scan: int, scanned: int, selected: int) -> None:
        now = time.monotonic()
        if self._first is None:
            # Rates count this run only: a resumed replay starts with earlier counts.
            self._first = (scanned, selected)
            self._started = now
        if not self._live and now - self._printed_at < LINE_INTERVAL_S and scanned < to_scan:
            return
        self._printed_at = now
        line = self.line(to_scan, scanned, selected, now - self._started)
        if self._live:
            self._stream.write(f"\r{line}\x1b[K")
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def line(self, to_scan: int, scanned: int, selected: int, elapsed: float) -> str:
        first_scanned, first_selected = self._first or (0, 0)
        share = scanned / to_scan if to_scan else 1.0
        filled = round(share * BAR_WIDTH)
        rate = (selected - first_selected) / elapsed if elapsed > 0 else 0.0
        scan_rate = (scanned - first_scanned) / elapsed if elapsed > 0 else 0.0
        eta = "--:--" if scan_rate <= 0 else duration((to_scan - scanned) / scan_rate)
        return (
            f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {share:4.0%}  "
            f"{scanned:,}/{to_scan:,} read, {selected:,} sent  "
            f"{rate:,.0f} events/s  ETA {eta}"
        )

    def done(self) -> None:
        if self._live:
            self._stream.write("\n")
            self._stream.flush()


def summary(replay: ReplayOut) -> str:
    counts = replay.counts
    rows = [
        ("selected", counts.selected),
        ("routed", counts.routed),
        ("skipped", counts.skipped),
        ("delivered", counts.delivered),
        ("failed", counts.failed),
    ]
    if counts.in_flight:
        rows.append(("in flight", counts.in_flight))
    lines = [f"replay {replay.id}: {replay.state}"]
    lines += [f"  {name:<10}{value:>10,}" for name, value in rows]
    if replay.error:
        lines.append(f"  last error: {replay.error}")
    return "\n".join(lines)


def dry_run_summary(report: DryRunOut) -> str:
    lines = [
        f"dry run: {report.scanned:,} raw records read, nothing sent",
        f"  selected {report.selected:,}, would be routed {report.routed:,}, "
        f"skipped {report.skipped:,}, failed {report.failed:,}",
    ]
    for trigger in report.triggers:
        name = trigger.name or "(deleted trigger)"
        lines.append(
            f"  {name} ({trigger.trigger_id}): selected {trigger.selected:,}, "
            f"routed {trigger.routed:,}, skipped {trigger.skipped:,}, failed {trigger.failed:,}"
        )
        for reason, count in trigger.skipped_by_reason.items():
            lines.append(f"      skipped {count:>8,}  {reason}")
        for reason, count in trigger.failed_by_reason.items():
            lines.append(f"      failed  {count:>8,}  {reason}")
    return "\n".join(lines)
