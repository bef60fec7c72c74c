"""Which raw records a replay selects: its project's events, optionally of some triggers, or
with some event ids; never the copies an earlier replay made."""

from __future__ import annotations

from ingest.replay.raw_history import HistoricRecord
from kinds import KINDS
from kinds.base import UnroutableEvent


class Selector:
    def __init__(
        self, project_id: str, trigger_ids: list[str] | None, event_ids: list[str] | None
    ) -> None:
        self._project_id = project_id
        self._trigger_ids = None if trigger_ids is None else frozenset(trigger_ids)
        self._event_ids = None if event_ids is None else frozenset(event_ids)

    def selects(self, record: HistoricRecord) -> bool:
        raw = record.event
        if raw is None or raw.replay or raw.project_id != self._project_id:
            return False
        if self._trigger_ids is not None and raw.trigger_id not in self._trigger_ids:
            return False
        if self._event_ids is None or raw.id in self._event_ids:
            return True
        return self.event_id(record) in self._event_ids

    @staticmethod
    def event_id(record: HistoricRecord) -> str | None:
        """The id users see (the sender's: Slack's event_id, the webhook-id...), which the kind
        finds while normalizing; None when the body is not an event."""
        raw = record.event
        kind = None if raw is None else KINDS.get(raw.definition)
        if raw is None or kind is None:
            return None
        try:
            return kind.normalize(raw, None).event_id
        except UnroutableEvent:
            return None
