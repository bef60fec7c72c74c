"""One event's entries in delivery-log records read back from the topic."""

from __future__ import annotations

from schemas.records import DeliveryLogRecord
from schemas.topics import DELIVERY_LOG
from tests.integration.support.topic_reader import Record


def log_entries(records: list[Record], event_id: str) -> list[DeliveryLogRecord]:
    """The delivery-log entries of `event_id`, in the order they were written."""
    entries = (DELIVERY_LOG.decode(value) for _, value in records)
    return [entry for entry in entries if entry.event_id == event_id]


def journey(records: list[Record], event_id: str) -> list[tuple[str, str]]:
    """The (stage, outcome) steps of `event_id`, in the order they were written."""
    return [(entry.stage, entry.outcome) for entry in log_entries(records, event_id)]
