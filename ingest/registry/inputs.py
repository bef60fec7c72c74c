"""What a caller asks the registry to store: the one typed input of the control-plane service,
whichever door it came through (the API's request bodies, the CLI's options).

Secret values appear only here, never in what is shown back. Partial updates tell "omitted"
from "null" through `model_fields_set`.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ingest.registry.errors import Invalid
from ingest.registry.validation import pydantic_errors
from kinds.config import BoolExpression, PayloadExpression
from schemas.triggers import DESTINATION_NAME_PATTERN, DefinitionSlug, TargetKind, TriggerStatus

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]
# Free text that is stored and shown: no control characters (PostgreSQL cannot store NUL, and
# the others only hide what a reader sees).
PlainText = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]*$")]
SecretName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
SecretValue = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
DestinationName = Annotated[str, StringConstraints(pattern=DESTINATION_NAME_PATTERN)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetIn(Body):
    kind: TargetKind
    ref: PlainText = Field(default="", max_length=2048, description="URL (http) or topic (kafka).")
    display_name: PlainText = Field(default="", max_length=200)
    timeout_s: float = Field(default=10.0, gt=0, le=60)
    max_attempts: int = Field(default=8, ge=1, le=50)
    max_age_s: float = Field(default=24 * 60 * 60, gt=0, le=7 * 24 * 60 * 60)
    signing_secret: SecretValue | None = Field(
        default=None,
        description="http only, write-only: `whsec_<base64>`, signs each delivery. Omitted on "
        "update: the current one stays.",
    )


class RateLimitIn(Body):
    per_second: float = Field(gt=0, le=10_000, description="Deliveries per second.")
    burst: int = Field(default=1, ge=1, le=10_000, description="Deliveries at once, at most.")


class DestinationFields(Body):
    """A destination but for its name. CEL expressions are checked here, so an error names the
    field with its line and column."""

    target: TargetIn
    filter: BoolExpression | None = Field(
        default=None, description="CEL (bool) over `event`, after the trigger's own filter."
    )
    transform: PayloadExpression | None = Field(
        default=None,
        description="CEL over `event` returning a map, list or string: the CloudEvent's `data`.",
    )
    rate_limit: RateLimitIn | None = None
    max_concurrency: int | None = Field(
        default=None, ge=1, le=1000, description="Deliveries in progress at once, at most."
    )


class DestinationIn(DestinationFields):
    name: DestinationName = Field(description="Unique within the trigger.")


class DestinationReplace(DestinationFields):
    """A whole destination, replacing the one named in the path; `name`, when given, must be
    that name. An http target given without `signing_secret` keeps the current one."""

    name: DestinationName | None = None


class DestinationUpdate(Body):
    """Omitted fields stay; `null` clears filter, transform, rate_limit or max_concurrency.
    `target` replaces the whole target (an http one without `signing_secret` keeps the current
    secret); `name` renames."""

    name: DestinationName | None = None
    target: TargetIn | None = None
    filter: BoolExpression | None = None
    transform: PayloadExpression | None = None
    rate_limit: RateLimitIn | None = None
    max_concurrency: int | None = Field(default=None, ge=1, le=1000)


class TriggerCreate(Body):
    """Give `target` (one destination named "default") or `destinations`, not both."""

    definition: DefinitionSlug
    name: Name
    status: TriggerStatus = "active"
    target: TargetIn | None = Field(
        default=None, description='The trigger\'s one destination, named "default".'
    )
    destinations: list[DestinationIn] | None = Field(default=None, min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)
    environment_id: UUID | None = None
    secrets: dict[SecretName, SecretValue] = Field(
        default_factory=dict, description="Write-only secret values, by name."
    )


class TriggerUpdate(Body):
    """Omitted fields stay as they are; `environment_id: null` detaches the environment."""

    definition: DefinitionSlug | None = Field(default=None, description="Cannot change.")
    name: Name | None = None
    status: TriggerStatus | None = None
    target: TargetIn | None = Field(
        default=None,
        description='Replaces the target of the destination named "default" (added if absent).',
    )
    destinations: list[DestinationIn] | None = Field(
        default=None, min_length=1, description="Replaces every destination."
    )
    config: dict[str, Any] | None = None
    environment_id: UUID | None = None
    secrets: dict[SecretName, SecretValue | None] | None = Field(
        default=None, description="Merged into the trigger's secrets; a null value removes one."
    )


class EnvironmentCreate(Body):
    name: Name
    secrets: dict[SecretName, SecretValue] = Field(default_factory=dict)


class EnvironmentUpdate(Body):
    name: Name | None = None
    secrets: dict[SecretName, SecretValue | None] | None = Field(
        default=None, description="Merged into the environment; a null value removes one."
    )


Input = TypeVar("Input", bound=BaseModel)


def parsed(model: type[Input], raw: dict[str, Any]) -> Input:
    """`raw` as `model`, or Invalid with the field paths the API reports for the same body."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise Invalid(pydantic_errors(error, "body")) from None
