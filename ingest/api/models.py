"""Request and response bodies of the control-plane API.

Secret values appear only in requests: responses name the secrets a resource has, never their
values. Partial updates tell "omitted" from "null" through `model_fields_set`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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


class TargetOut(BaseModel):
    kind: TargetKind
    ref: str
    display_name: str
    timeout_s: float
    max_attempts: int
    max_age_s: float
    has_signing_secret: bool


class TriggerOut(BaseModel):
    id: str
    project_id: str
    definition: DefinitionSlug
    name: str
    status: TriggerStatus
    target: TargetOut
    config: dict[str, Any]
    environment_id: str | None
    secret_names: list[str]
    webhook_url: str | None
    revision: int
    created_at: datetime
    updated_at: datetime


class TriggerPage(BaseModel):
    items: list[TriggerOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class DefinitionOut(BaseModel):
    slug: DefinitionSlug
    title: str
    description: str
    kind: Literal["webhook", "schedule"]
    config_schema: dict[str, Any]
    required_secrets: list[str]
    verification: str | None


class EnvironmentCreate(Body):
    name: Name
    secrets: dict[SecretName, SecretValue] = Field(default_factory=dict)


class EnvironmentUpdate(Body):
    name: Name | None = None
    secrets: dict[SecretName, SecretValue | None] | None = Field(
        default=None, description="Merged into the environment; a null value removes one."
    )


class EnvironmentOut(BaseModel):
    id: str
    name: str
    secret_names: list[str]
    created_at: datetime
    updated_at: datetime
