"""Response bodies of the control-plane API (requests are `ingest.registry.inputs`).

Responses name the secrets a resource has, never their values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.triggers import DefinitionSlug, TargetKind, TriggerStatus


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


class EnvironmentOut(BaseModel):
    id: str
    name: str
    secret_names: list[str]
    created_at: datetime
    updated_at: datetime
