"""Trigger configuration as the data plane sees it on the trigger-config topic."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

DefinitionSlug = Literal["slack", "cron", "webhook", "github", "stripe"]
TriggerStatus = Literal["active", "paused"]
TargetKind = Literal["http", "kafka", "noop"]

# The secret (whsec_<base64>) that signs deliveries to an http target, among a trigger's secrets.
TARGET_SIGNING_ENTRY = "TARGET_SIGNING_SECRET"


class Target(msgspec.Struct, frozen=True):
    kind: TargetKind
    # A URL for http, a topic name for kafka, empty for noop.
    ref: str = ""
    display_name: str = ""
    timeout_s: float = 10.0
    max_attempts: int = 8
    max_age_s: float = 24 * 60 * 60


class TriggerConfig(msgspec.Struct, frozen=True):
    """One trigger instance, keyed by its id on the compacted trigger-config topic.

    Secret values travel only as Fernet ciphertexts tagged with their key id
    (`{"SLACK_SIGNING_SECRET": "k1:gAAAA..."}`); services that need them hold the key.
    """

    trigger_id: str
    project_id: str
    definition: DefinitionSlug
    name: str
    status: TriggerStatus
    target: Target
    updated_at: datetime
    # Increases with every committed change; consumers ignore a revision older than one they hold.
    revision: int
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    secrets: dict[str, str] = msgspec.field(default_factory=dict)
    v: int = 1

    @property
    def active(self) -> bool:
        return self.status == "active"
