"""An event's outcome, per destination and as a whole, derived from its delivery-log steps.

A step belongs to a destination when it names one. Steps written before triggers had
destinations name none; their routed and dispatcher steps were the one destination's, now
called "default". The other unnamed steps are the whole event's: a trigger-level skip or filter
error, an ignored event, a processor dead letter.

- A destination's outcome is its latest final step, or `in_progress` while it has none.
- The event's outcome is its latest whole-event final step if it has one (the trigger's rules
  kept it from every destination). Otherwise, of the destinations it was routed to: any still
  in progress makes it `in_progress`, any dead-lettered makes it `dead_lettered`, and it is
  `delivered` only if every one delivered. Routed to none, it takes the outcome of its
  destinations' decisions, an error before a skip.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ingest.registry.deliveries import DeliveryRow
from schemas.triggers import DEFAULT_DESTINATION

# What finally happened to an event or to its way to one destination. A `duplicate` is a
# sender's retry of an event already seen: a step of that event's journey, never its fate.
FINAL_OUTCOMES = frozenset(
    {"delivered", "dead_lettered", "skipped", "filter_error", "transform_error", "ignored"}
)
IN_PROGRESS = "in_progress"
# Among destinations the event was not routed to, the outcome the event takes, first found.
_UNROUTED_ORDER = ("filter_error", "transform_error", "skipped")


@dataclass(frozen=True, slots=True)
class Outcomes:
    event: str
    # Destination name -> its outcome, in the order the destinations first appear.
    destinations: dict[str, str]


def destination_of(row: DeliveryRow) -> str | None:
    if row.destination is not None:
        return row.destination
    if row.stage == "dispatcher" or row.outcome == "routed":
        return DEFAULT_DESTINATION
    return None


def outcomes(rows: Iterable[DeliveryRow]) -> Outcomes:
    """`rows` in the order of steps."""
    whole_event: str | None = None
    latest: dict[str, str] = {}
    routed: set[str] = set()
    for row in rows:
        destination = destination_of(row)
        if destination is None:
            if row.outcome in FINAL_OUTCOMES:
                whole_event = row.outcome
            continue
        if row.outcome == "routed":
            routed.add(destination)
        final = row.outcome if row.outcome in FINAL_OUTCOMES else None
        if final is not None or destination not in latest:
            latest[destination] = final or IN_PROGRESS
    if whole_event is not None:
        return Outcomes(whole_event, latest)
    return Outcomes(_event_outcome(latest, routed), latest)


def _event_outcome(latest: dict[str, str], routed: set[str]) -> str:
    if not latest:
        return IN_PROGRESS
    reached = [latest[name] for name in latest if name in routed]
    if reached:
        if IN_PROGRESS in reached:
            return IN_PROGRESS
        if "dead_lettered" in reached:
            return "dead_lettered"
        # Delivered everywhere, or skipped by a dispatcher (a destination removed meanwhile).
        return next((o for o in reached if o != "delivered"), "delivered")
    decided = set(latest.values())
    return next((o for o in _UNROUTED_ORDER if o in decided), IN_PROGRESS)
