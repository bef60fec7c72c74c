"""Which (trigger id, event id) pairs this processor group has seen recently.

A sender's retry (Slack resends with X-Slack-Retry-Num and the same event_id; a Standard
Webhooks sender reuses its webhook-id; a cron failover re-fires a tick with the same tick id)
must not become a second delivery. The memory is a faust windowed table: its writes go to a
changelog topic inside the same Kafka transaction as the routed record, so a restarted or
rebalanced worker remembers exactly what was committed, and expired windows are dropped so
memory stays bounded by the traffic of about two windows.
"""

from __future__ import annotations

from typing import Any, Protocol


class SeenEvents(Protocol):
    def seen_before(self, trigger_id: str, event_id: str) -> bool:
        """Whether the pair was seen within the window; marks it as seen either way."""
        ...


class WindowedSeenEvents:
    """Tumbling windows of `window_s` on the raw record's timestamp.

    A pair counts as seen if it is in the current window or the one before, so every repeat
    within `window_s` is caught (and some up to twice that). Raw events are keyed by trigger
    id, so one trigger's pairs live on one partition and the check needs no remote lookup.
    """

    def __init__(self, app: Any, window_s: float, partitions: int) -> None:
        self._window_s = window_s
        table = app.Table(
            "seen-events",
            # Unseen pairs read as 0 (and are not stored by the read).
            default=int,
            key_type=str,
            value_type=int,
            partitions=partitions,
            help="(trigger id, event id) pairs seen in the deduplication window",
        )
        # Windows are stamped with the raw record's own timestamp (when ingest accepted it),
        # so a record re-processed after a crash lands in the same window as the first time.
        self._windows = table.tumbling(window_s, expires=2 * window_s)

    def seen_before(self, trigger_id: str, event_id: str) -> bool:
        key = f"{trigger_id}/{event_id}"
        windows = self._windows[key]
        if windows.current() or windows.delta(self._window_s):
            return True
        self._windows[key] = 1
        return False
