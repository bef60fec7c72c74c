"""What a caller asks of a replay, checked before anything runs: the API's body and the CLI's
options become one `ReplayCreate`, and `checked` turns it into a selection (or a 4xx)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from psycopg import AsyncConnection
from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints

from ingest.registry.errors import FieldError, Invalid, NotFound
from ingest.registry.inputs import Body, PlainText
from ingest.registry.store import TriggerRow, find_trigger
from ingest.registry.validation import target_errors
from ingest.replay.rules import RuleOverrides, routing_rules
from ingest.replay.store import ReplaySelection
from runtime.kafka_targets import KafkaTargetPolicy
from runtime.settings import Settings
from schemas.triggers import Target, TargetKind

EventId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# Triggers one request may name.
MAX_TRIGGER_IDS = 100
UNSIGNED_TRIGGERS = """
SELECT name FROM triggers
WHERE project_id = %s AND deleted_at IS NULL AND destinations->0->>'signing_secret' IS NULL
ORDER BY name LIMIT 10
"""


class AlternateTarget(Body):
    """Where a replay delivers instead of each trigger's destinations, once per event.
    Deliveries keep the trigger's first destination's timeout, attempts and maximum age, and
    an http one is signed with that destination's signing secret."""

    kind: TargetKind
    ref: PlainText = Field(default="", max_length=2048, description="URL (http) or topic (kafka).")


class ReplayCreate(Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_time: AwareDatetime = Field(alias="from", description="Start of the range (inclusive).")
    to_time: AwareDatetime | None = Field(
        default=None, alias="to", description="End of the range (exclusive); default: now."
    )
    trigger_ids: list[UUID] | None = Field(
        default=None, min_length=1, max_length=MAX_TRIGGER_IDS, description="Default: every one."
    )
    event_ids: list[EventId] | None = Field(default=None, min_length=1)
    target: AlternateTarget | None = Field(
        default=None,
        description="Deliver to this target instead of each trigger's own, for this replay only;"
        " http deliveries are signed with the trigger's signing secret.",
    )
    rate_per_s: float | None = Field(default=None, gt=0, description="Events per second.")
    dry_run: bool = False
    filter: PlainText | None = Field(
        default=None, max_length=8192, description="Dry runs only: evaluate this filter instead."
    )
    event_types: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = (
        Field(default=None, max_length=500, description="Dry runs only: this allow-list instead.")
    )


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    selection: ReplaySelection
    # The triggers the request names, by id (none when it names none: then every trigger).
    triggers: dict[str, TriggerRow]
    overrides: RuleOverrides | None


async def checked(
    conn: AsyncConnection[Any], settings: Settings, project_id: str, given: ReplayCreate
) -> CheckedRequest:
    """The selection the request describes; Invalid (422) listing every refused field."""
    errors: list[FieldError] = []
    now = datetime.now(UTC)
    until = min(given.to_time or now, now)
    if given.from_time >= until:
        errors.append(FieldError("from", "must be before `to` (and before now)"))
    limit = settings.replay.max_event_ids
    if given.event_ids is not None and len(given.event_ids) > limit:
        errors.append(
            FieldError("event_ids", f"at most {limit} (TRIGGERLINE_REPLAY_MAX_EVENT_IDS)")
        )
    bounds = settings.replay
    rate = given.rate_per_s or min(bounds.default_rate_per_s, bounds.max_rate_per_s)
    if rate > bounds.max_rate_per_s:
        errors.append(
            FieldError(
                "rate_per_s",
                f"at most {bounds.max_rate_per_s:g} (TRIGGERLINE_REPLAY_MAX_RATE_PER_S)",
            )
        )
    triggers = await _triggers(conn, project_id, given.trigger_ids, errors)
    overrides = _overrides(given, triggers, errors)
    if overrides is not None and len(triggers) == 1:
        # Compiled now, so that a filter that does not compile is refused before any reading.
        try:
            routing_rules(next(iter(triggers.values())), settings.cel, overrides)
        except Invalid as invalid:
            errors.extend(invalid.errors)
    target = _target(given.target, KafkaTargetPolicy.from_settings(settings), errors)
    if target is not None and target.kind == "http":
        await _check_signed(conn, project_id, given.trigger_ids, triggers, errors)
    if errors:
        raise Invalid(errors)
    selection = ReplaySelection(
        from_time=given.from_time,
        to_time=until,
        trigger_ids=None if given.trigger_ids is None else list(triggers),
        event_ids=given.event_ids,
        target=target,
        rate_per_s=rate,
    )
    return CheckedRequest(selection, triggers, overrides)


async def _triggers(
    conn: AsyncConnection[Any],
    project_id: str,
    ids: list[UUID] | None,
    errors: list[FieldError],
) -> dict[str, TriggerRow]:
    if ids is None:
        return {}
    found: dict[str, TriggerRow] = {}
    for index, trigger_id in enumerate(ids):
        try:
            row = await find_trigger(conn, project_id, str(trigger_id))
        except NotFound:
            errors.append(FieldError(f"trigger_ids[{index}]", "no such trigger in this project"))
            continue
        found[row.id] = row
    return found


def _overrides(
    given: ReplayCreate, triggers: dict[str, TriggerRow], errors: list[FieldError]
) -> RuleOverrides | None:
    overrides = RuleOverrides(filter=given.filter, event_types=given.event_types)
    if not overrides.given:
        return None
    if not given.dry_run:
        errors.append(
            FieldError(
                "filter" if given.filter is not None else "event_types",
                "applies to dry runs only; save it in the trigger's config to route by it",
            )
        )
    elif given.trigger_ids is None or len(triggers) != 1:
        errors.append(
            FieldError(
                "trigger_ids",
                "a filter or event-type override applies to one trigger: name exactly one",
            )
        )
    return overrides


def _target(
    given: AlternateTarget | None, topics: KafkaTargetPolicy, errors: list[FieldError]
) -> Target | None:
    if given is None:
        return None
    target = Target(**given.model_dump())
    # An http delivery is signed with the trigger's own signing secret: `_check_signed`.
    errors.extend(target_errors(target, has_signing_secret=target.kind == "http", topics=topics))
    return target


async def _check_signed(
    conn: AsyncConnection[Any],
    project_id: str,
    named: list[UUID] | None,
    triggers: dict[str, TriggerRow],
    errors: list[FieldError],
) -> None:
    if named is None:
        cursor = await conn.execute(UNSIGNED_TRIGGERS, (project_id,))
        unsigned = [name for (name,) in await cursor.fetchall()]
    else:
        unsigned = sorted(
            row.name for row in triggers.values() if row.destinations[0].signing_secret is None
        )
    if unsigned:
        errors.append(
            FieldError(
                "target",
                "an http alternate target is signed with the signing secret of each trigger's "
                f"first destination, and these triggers have none: {', '.join(unsigned[:10])};"
                " name other triggers",
            )
        )
