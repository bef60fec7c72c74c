"""A trigger's routing rules as the processors compile them, optionally with another filter or
event-type list: what dry runs and filter previews evaluate.

An override is checked exactly as saving it would be, so a filter that does not compile gets
the same 422, with its line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ingest.registry.errors import Invalid
from ingest.registry.store import TriggerRow
from ingest.registry.validation import validated_config
from kinds import KINDS
from kinds.routing import RoutingTrigger, compile_routing_trigger
from runtime.settings import CelSettings
from schemas.triggers import TriggerConfig


@dataclass(frozen=True, slots=True)
class RuleOverrides:
    """Rules to evaluate instead of the trigger's own. None keeps the trigger's; an empty
    filter evaluates without one, and an empty event-type list routes every type."""

    filter: str | None = None
    event_types: list[str] | None = None

    @property
    def given(self) -> bool:
        return self.filter is not None or self.event_types is not None


def routing_rules(
    row: TriggerRow, cel: CelSettings, overrides: RuleOverrides | None = None
) -> RoutingTrigger:
    """The trigger's rules, compiled with the deployment's CEL engine and bounds; Invalid (422)
    when an override would not be saved."""
    config = dict(row.config)
    if overrides is not None and overrides.given:
        if overrides.filter is not None:
            config["filter"] = overrides.filter or None
        if overrides.event_types is not None:
            config["event_types"] = overrides.event_types or None
        try:
            config = validated_config(KINDS[row.definition], config)
        except Invalid as exc:
            # The request names these fields at its top level.
            raise Invalid(
                replace(e, path=e.path.removeprefix("config.")) for e in exc.errors
            ) from None
    record = TriggerConfig(
        trigger_id=row.id,
        project_id=row.project_id,
        definition=row.definition,
        name=row.name,
        status=row.status,
        destinations=row.destinations,
        updated_at=row.updated_at,
        revision=row.revision,
        config=config,
    )
    return compile_routing_trigger(
        record, cel.engine, max_collection_items=cel.max_collection_items
    )
