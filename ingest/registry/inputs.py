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
from schemas.triggers import DefinitionSlug, TargetKind, TriggerStatus

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]
# Free text that is stored and shown: no control characters (PostgreSQL cannot store NUL, and
# the others only hide what a reader sees).
PlainText = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]*$")]
SecretName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
SecretValue = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


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


class TriggerCreate(Body):
    definition: DefinitionSlug
    name: Name
    status: TriggerStatus = "active"
    target: TargetIn
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
    target: TargetIn | None = None
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
