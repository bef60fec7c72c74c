"""The control plane's service: every change to a project's triggers and environments.

The API routes and the CLI both call it with the same typed input (`ingest.registry.inputs`),
so neither door accepts what the other refuses. A change is checked as a whole (the config
through its definition, the destinations and their targets, the secrets and their count, the
environment), refused with `Invalid` listing every bad field, and otherwise encrypted, stored
and published to the outbox in one transaction; the store refuses a config record over the
bound (`RecordTooLarge`).
Every refusal is a `RegistryError`. Changes to one destination at a time are in
`ingest.registry.destination_changes`, part of the same class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from psycopg import AsyncConnection

from ingest.registry import environments, store
from ingest.registry.config_records import lock_environment
from ingest.registry.destination_changes import DestinationChanges
from ingest.registry.environments import EnvironmentRow
from ingest.registry.errors import FieldError, Invalid, UnknownEnvironment
from ingest.registry.inputs import (
    EnvironmentCreate,
    EnvironmentUpdate,
    TriggerCreate,
    TriggerUpdate,
)
from ingest.registry.store import NewTrigger, TriggerRow
from ingest.registry.validation import (
    missing_secret_errors,
    null_errors,
    secret_count_errors,
    secret_errors,
    validated_config,
)
from kinds import KINDS, webhook_kind
from runtime.kafka_targets import KafkaTargetPolicy
from runtime.secrets import Keyring
from runtime.settings import Settings
from schemas.triggers import DefinitionSlug, TriggerStatus

# Fields of an update that may be omitted but, when given, must not be null.
NOT_NULL_TRIGGER_FIELDS = (
    "definition",
    "name",
    "status",
    "target",
    "destinations",
    "config",
    "secrets",
)
NOT_NULL_ENVIRONMENT_FIELDS = ("name", "secrets")


@dataclass(frozen=True, slots=True)
class ControlPlane(DestinationChanges):
    keyring: Keyring
    max_secrets: int
    max_destinations: int
    record_bound: int
    kafka_targets: KafkaTargetPolicy

    @classmethod
    def from_settings(cls, settings: Settings, keyring: Keyring) -> ControlPlane:
        return cls(
            keyring=keyring,
            max_secrets=settings.registry.max_secrets,
            max_destinations=settings.registry.max_destinations,
            record_bound=settings.registry.config_record_max_bytes,
            kafka_targets=KafkaTargetPolicy.from_settings(settings),
        )

    async def create_trigger(
        self, conn: AsyncConnection[Any], project_id: str, given: TriggerCreate
    ) -> TriggerRow:
        definition = KINDS[given.definition]
        errors: list[FieldError] = []
        config = _checked_config(errors, given.definition, given.config)
        if given.target is None and given.destinations is None:
            message = 'give `target` (one destination, named "default") or `destinations`'
            errors.append(FieldError("target", message))
        destinations = self._destinations(errors, given.target, given.destinations, ())
        errors += secret_errors("secrets", given.secrets)
        errors += secret_count_errors("secrets", len(given.secrets), self.max_secrets)
        environment_id = None if given.environment_id is None else str(given.environment_id)
        async with conn.transaction():
            available = set(given.secrets)
            available |= await _environment_secret_names(conn, project_id, environment_id, errors)
            errors += missing_secret_errors(definition, available)
            if errors:
                raise Invalid(errors)
            return await store.insert_trigger(
                conn,
                NewTrigger(
                    project_id=project_id,
                    definition=given.definition,
                    name=given.name,
                    destinations=destinations,
                    config=config,
                    secrets=self._merged({}, given.secrets),
                    status=given.status,
                    environment_id=environment_id,
                ),
                record_bound=self.record_bound,
            )

    async def update_trigger(
        self, conn: AsyncConnection[Any], project_id: str, trigger_id: str, given: TriggerUpdate
    ) -> TriggerRow:
        """Change the fields given; `environment_id: null` detaches the environment, and a
        secret given as null is removed."""
        async with conn.transaction():
            row = await store.find_trigger(conn, project_id, trigger_id, lock=True)
            errors = null_errors(given, NOT_NULL_TRIGGER_FIELDS)
            if given.definition not in (None, row.definition):
                errors.append(FieldError("definition", "the definition of a trigger cannot change"))
            new = replace(
                row,
                name=given.name or row.name,
                status=given.status or row.status,
                config=row.config
                if given.config is None
                else _checked_config(errors, row.definition, given.config),
            )
            if given.target is not None or given.destinations is not None:
                new = replace(
                    new,
                    destinations=self._destinations(
                        errors, given.target, given.destinations, row.destinations
                    ),
                )
            if "environment_id" in given.model_fields_set:
                environment_id = given.environment_id
                new = replace(
                    new, environment_id=None if environment_id is None else str(environment_id)
                )
            if given.secrets is not None:
                errors += secret_errors("secrets", given.secrets)
                new = replace(new, secrets=self._merged(row.secrets, given.secrets))
                errors += secret_count_errors("secrets", len(new.secrets), self.max_secrets)
            available = set(new.secrets)
            available |= await _environment_secret_names(
                conn, project_id, new.environment_id, errors
            )
            errors += missing_secret_errors(KINDS[row.definition], available)
            if errors:
                raise Invalid(errors)
            if new == row:
                return row
            return await store.save_trigger(conn, new, record_bound=self.record_bound)

    async def set_trigger_status(
        self,
        conn: AsyncConnection[Any],
        project_id: str,
        trigger_id: str,
        status: TriggerStatus,
    ) -> TriggerRow:
        """Pause or resume; pausing a paused trigger changes nothing, so it publishes nothing."""
        async with conn.transaction():
            row = await store.find_trigger(conn, project_id, trigger_id, lock=True)
            if row.status == status:
                return row
            return await store.save_trigger(
                conn, replace(row, status=status), record_bound=self.record_bound
            )

    async def delete_trigger(
        self, conn: AsyncConnection[Any], project_id: str, trigger_id: str
    ) -> None:
        await store.delete_trigger(conn, project_id, trigger_id)

    async def create_environment(
        self, conn: AsyncConnection[Any], project_id: str, given: EnvironmentCreate
    ) -> EnvironmentRow:
        errors = secret_errors("secrets", given.secrets)
        errors += secret_count_errors("secrets", len(given.secrets), self.max_secrets)
        if errors:
            raise Invalid(errors)
        return await environments.create_environment(
            conn, project_id, given.name, self._merged({}, given.secrets)
        )

    async def update_environment(
        self,
        conn: AsyncConnection[Any],
        project_id: str,
        environment_id: str,
        given: EnvironmentUpdate,
    ) -> EnvironmentRow:
        """Change the fields given; a secret given as null is removed. A change of secrets
        republishes every trigger using the environment, and is refused for all of them
        (RecordTooLarge) if any would outgrow its config record."""
        errors = null_errors(given, NOT_NULL_ENVIRONMENT_FIELDS)
        errors += secret_errors("secrets", given.secrets or {})
        if errors:
            raise Invalid(errors)
        async with conn.transaction():
            row = await environments.find_environment(conn, project_id, environment_id, lock=True)
            secrets = self._merged(row.secrets, given.secrets or {})
            errors = secret_count_errors("secrets", len(secrets), self.max_secrets)
            if errors:
                raise Invalid(errors)
            new = replace(row, name=given.name or row.name, secrets=secrets)
            if new == row:
                return row
            return await environments.save_environment(conn, new, record_bound=self.record_bound)

    def _merged(
        self, current: Mapping[str, str], changes: Mapping[str, str | None]
    ) -> dict[str, str]:
        """Encrypted secrets with `changes` applied: a value replaces, a null removes."""
        merged = dict(current)
        for name, value in changes.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = self._sealed(value)
        return merged

    def _sealed(self, value: str) -> str:
        # The one place a secret value is encrypted on its way into the registry.
        return self.keyring.encrypt(value)


def webhook_url(row: TriggerRow, public_base_url: str) -> str | None:
    """Where a webhook trigger's sender posts; None for kinds that are not sent to."""
    if webhook_kind(row.definition) is None:
        return None
    return f"{public_base_url}/webhooks/{row.id}"


def _checked_config(
    errors: list[FieldError], slug: DefinitionSlug, raw: dict[str, Any]
) -> dict[str, Any]:
    try:
        return validated_config(KINDS[slug], raw)
    except Invalid as invalid:
        errors.extend(invalid.errors)
        return {}


async def _environment_secret_names(
    conn: AsyncConnection[Any],
    project_id: str,
    environment_id: str | None,
    errors: list[FieldError],
) -> set[str]:
    if environment_id is None:
        return set()
    try:
        return set(await lock_environment(conn, project_id, environment_id))
    except UnknownEnvironment as unknown:
        errors.extend(unknown.errors)
        return set()
