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


class RateLimitOut(BaseModel):
    per_second: float
    burst: int


class DestinationOut(BaseModel):
    name: str
    target: TargetOut
    filter: str | None
    transform: str | None
    rate_limit: RateLimitOut | None
    max_concurrency: int | None


class TriggerOut(BaseModel):
    id: str
    project_id: str
    definition: DefinitionSlug
    name: str
    status: TriggerStatus
    # The destination "default"'s target; null when the trigger has none of that name.
    target: TargetOut | None
    destinations: list[DestinationOut]
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


class ReplaySelectionOut(BaseModel):
    from_time: datetime = Field(serialization_alias="from")
    to_time: datetime = Field(serialization_alias="to")
    trigger_ids: list[str] | None
    event_ids: list[str] | None
    # The alternate target, its URL's credentials redacted; null for each trigger's own.
    target: dict[str, Any] | None
    rate_per_s: float


class ReplayCounts(BaseModel):
    # Raw records in the range, and read so far.
    to_scan: int
    scanned: int
    # Events sent again so far.
    selected: int
    # What the pipeline did with them (from the delivery log).
    routed: int
    skipped: int
    delivered: int
    failed: int
    in_flight: int


class ReplayOut(BaseModel):
    id: str
    state: Literal["pending", "running", "cancelled", "finished", "failed"]
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    # Why the runner last stopped short (it resumes); null when it did not.
    error: str | None
    selection: ReplaySelectionOut
    counts: ReplayCounts
    # Every copy sent so far has reached its end.
    settled: bool


class ReplayPage(BaseModel):
    items: list[ReplayOut]
    # Pass as `before` for the next (older) page; null on the last page.
    next_before: datetime | None


class TriggerDryRunOut(BaseModel):
    trigger_id: str
    # Null for a trigger deleted since.
    name: str | None
    selected: int
    routed: int
    skipped: int
    failed: int
    skipped_by_reason: dict[str, int]
    failed_by_reason: dict[str, int]


class DryRunOut(BaseModel):
    dry_run: Literal[True] = True
    scanned: int
    selected: int
    routed: int
    skipped: int
    failed: int
    triggers: list[TriggerDryRunOut]
