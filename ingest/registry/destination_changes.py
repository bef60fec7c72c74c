"""Changes to a trigger's destinations, part of the control-plane service
(`ingest.registry.service.ControlPlane` is the one class callers use).

A trigger's destinations change as a whole list (`target` or `destinations` of a trigger's
create and update) or one at a time (the `/triggers/{id}/destinations` sub-resource, the
`triggerline destinations` commands). Either way the change is checked, stored with the
trigger's next revision and published through the outbox in one transaction, like any other
change to a trigger.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec
from psycopg import AsyncConnection

from ingest.registry import store
from ingest.registry.destinations import (
    destination_of,
    list_errors,
    rate_limit_of,
    target_checks,
    target_of,
    with_target,
)
from ingest.registry.errors import FieldError, Invalid, LastDestination, NameConflict, NotFound
from ingest.registry.inputs import (
    DestinationIn,
    DestinationReplace,
    DestinationUpdate,
    TargetIn,
)
from ingest.registry.store import TriggerRow
from ingest.registry.validation import null_errors
from runtime.kafka_targets import KafkaTargetPolicy
from schemas.triggers import DEFAULT_DESTINATION, Destination


class DestinationChanges:
    """The destination operations of `ControlPlane`, which supplies the attributes below."""

    __slots__ = ()

    max_destinations: int
    record_bound: int
    kafka_targets: KafkaTargetPolicy

    def _sealed(self, value: str) -> str:
        raise NotImplementedError

    async def add_destination(
        self, conn: AsyncConnection[Any], project_id: str, trigger_id: str, given: DestinationIn
    ) -> tuple[TriggerRow, Destination]:
        """Append a destination; NameConflict (409) if the trigger has one of that name."""
        async with conn.transaction():
            row = await store.find_trigger(conn, project_id, trigger_id, lock=True)
            if row.destination(given.name) is not None:
                raise _destination_taken(row, given.name)
            new = destination_of(given, given.name, None, self._sealed)
            errors = target_checks(new, given.target, "", self.kafka_targets)
            destinations = (*row.destinations, new)
            errors += list_errors(destinations, self.max_destinations)
            return await self._save(conn, row, destinations, errors, new)

    async def replace_destination(
        self,
        conn: AsyncConnection[Any],
        project_id: str,
        trigger_id: str,
        name: str,
        given: DestinationReplace,
    ) -> tuple[TriggerRow, Destination]:
        """Replace the destination `name` as a whole, keeping its place and, for an http target
        given without one, its signing secret."""
        async with conn.transaction():
            row, current = await _locked_destination(conn, project_id, trigger_id, name)
            errors: list[FieldError] = []
            if given.name not in (None, name):
                message = f"must be the name in the path ({name!r}); rename with PATCH"
                errors.append(FieldError("name", message))
            new = destination_of(given, name, current, self._sealed)
            errors += target_checks(new, given.target, "", self.kafka_targets)
            destinations = tuple(new if d.name == name else d for d in row.destinations)
            return await self._save(conn, row, destinations, errors, new)

    async def update_destination(
        self,
        conn: AsyncConnection[Any],
        project_id: str,
        trigger_id: str,
        name: str,
        given: DestinationUpdate,
    ) -> tuple[TriggerRow, Destination]:
        """Change the fields given: `null` clears filter, transform, rate_limit or
        max_concurrency; `name` renames (NameConflict if taken)."""
        async with conn.transaction():
            row, new = await _locked_destination(conn, project_id, trigger_id, name)
            errors = null_errors(given, ("name", "target"))
            if given.target is not None:
                new = with_target(new, given.target, self._sealed)
                errors += target_checks(new, given.target, "", self.kafka_targets)
            changes: dict[str, Any] = {
                field: getattr(given, field)
                for field in ("filter", "transform", "max_concurrency")
                if field in given.model_fields_set
            }
            if "rate_limit" in given.model_fields_set:
                changes["rate_limit"] = rate_limit_of(given.rate_limit)
            if given.name is not None and given.name != name:
                if row.destination(given.name) is not None:
                    raise _destination_taken(row, given.name)
                changes["name"] = given.name
            new = msgspec.structs.replace(new, **changes)
            destinations = tuple(new if d.name == name else d for d in row.destinations)
            return await self._save(conn, row, destinations, errors, new)

    async def remove_destination(
        self, conn: AsyncConnection[Any], project_id: str, trigger_id: str, name: str
    ) -> TriggerRow:
        """Remove a destination; LastDestination (409) for a trigger's only one."""
        async with conn.transaction():
            row, _ = await _locked_destination(conn, project_id, trigger_id, name)
            if len(row.destinations) == 1:
                raise LastDestination()
            destinations = tuple(d for d in row.destinations if d.name != name)
            return await store.save_trigger(
                conn, replace(row, destinations=destinations), record_bound=self.record_bound
            )

    async def _save(
        self,
        conn: AsyncConnection[Any],
        row: TriggerRow,
        destinations: tuple[Destination, ...],
        errors: list[FieldError],
        changed: Destination,
    ) -> tuple[TriggerRow, Destination]:
        """Store a trigger (locked by this transaction) with its destinations, one of them
        `changed`, or Invalid with every error. A change to nothing publishes nothing."""
        if errors:
            raise Invalid(errors)
        if destinations == row.destinations:
            return row, changed
        saved = await store.save_trigger(
            conn, replace(row, destinations=destinations), record_bound=self.record_bound
        )
        return saved, changed

    def _destinations(
        self,
        errors: list[FieldError],
        target: TargetIn | None,
        given: list[DestinationIn] | None,
        current: tuple[Destination, ...],
    ) -> tuple[Destination, ...]:
        """The destinations `given` (replacing `current`), or `current` with the destination
        "default" sending to `target` (added if absent); either, not both. Signing secrets of
        http targets given without one stay, by destination name."""
        if given is not None:
            if target is not None:
                message = "give `target` or `destinations`, not both"
                errors.append(FieldError("destinations", message))
            stored = {destination.name: destination for destination in current}
            built = tuple(
                destination_of(d, d.name, stored.get(d.name), self._sealed) for d in given
            )
            for index, (destination, entry) in enumerate(zip(built, given, strict=True)):
                where = f"destinations[{index}]."
                errors += target_checks(destination, entry.target, where, self.kafka_targets)
            errors += list_errors(built, self.max_destinations)
            return built
        if target is None:
            return current
        default = next((d for d in current if d.name == DEFAULT_DESTINATION), None)
        new = with_target(
            default or Destination(DEFAULT_DESTINATION, target_of(target)), target, self._sealed
        )
        errors += target_checks(new, target, "", self.kafka_targets)
        if default is None:
            destinations = (*current, new)
            errors += list_errors(destinations, self.max_destinations)
            return destinations
        return tuple(new if d.name == DEFAULT_DESTINATION else d for d in current)


async def _locked_destination(
    conn: AsyncConnection[Any], project_id: str, trigger_id: str, name: str
) -> tuple[TriggerRow, Destination]:
    """A live trigger, locked for this transaction, and its destination `name`; NotFound for
    either."""
    row = await store.find_trigger(conn, project_id, trigger_id, lock=True)
    destination = row.destination(name)
    if destination is None:
        raise NotFound("destination")
    return row, destination


def _destination_taken(row: TriggerRow, name: str) -> NameConflict:
    return NameConflict(f"trigger {row.name!r} already has a destination named {name!r}")
