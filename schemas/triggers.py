"""Trigger configuration as the data plane sees it on the trigger-config topic."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

DefinitionSlug = Literal["slack", "cron", "webhook", "github", "stripe"]
TriggerStatus = Literal["active", "paused"]
TargetKind = Literal["http", "kafka", "noop"]

# Where schema v1 kept the default target's signing secret, among a trigger's secrets.
TARGET_SIGNING_ENTRY = "TARGET_SIGNING_SECRET"


class Target(msgspec.Struct, frozen=True):
    kind: TargetKind
    # A URL for http, a topic name for kafka, empty for noop.
    ref: str = ""
    display_name: str = ""
    timeout_s: float = 10.0
    max_attempts: int = 8
    max_age_s: float = 24 * 60 * 60


class RateLimit(msgspec.Struct, frozen=True):
    """Deliveries per second to one destination, with bursts of up to `burst` at once."""

    per_second: float
    burst: int = 1


class Destination(msgspec.Struct, frozen=True):
    """Where a trigger's events go: one of its targets, with its own rules and limits.

    `filter` (bool) runs after the trigger's own; `transform` (map, list or string) replaces the
    CloudEvent's `data`. Both are CEL over `event`, checked at save time. The retry policy is the
    target's (`timeout_s`, `max_attempts`, `max_age_s`).
    """

    name: str
    target: Target
    filter: str | None = None
    transform: str | None = None
    rate_limit: RateLimit | None = None
    max_concurrency: int | None = None
    # Fernet ciphertext tagged with its key id (`k1:gAAAA...`) of the `whsec_<base64>` secret
    # that signs deliveries to an http target.
    signing_secret: str | None = None


# The destination a trigger's single `target` stands for, in the API and in v1 records.
DEFAULT_DESTINATION = "default"
# The destination name a replay's alternate target is delivered under; user-chosen names are
# lower-case letters, digits, `-` and `_`, so it cannot clash with one.
REPLAY_DESTINATION = "@replay"
DESTINATION_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


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
    updated_at: datetime
    # Increases with every committed change; consumers ignore a revision older than one they hold.
    revision: int
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    secrets: dict[str, str] = msgspec.field(default_factory=dict)
    # In order; names are unique. At least one.
    destinations: tuple[Destination, ...] = ()
    # Schema v1 had a single target, its signing secret among `secrets`: read as the
    # destination "default", so v1 records on the compacted topic stay readable.
    target: Target | None = None
    v: int = 2

    def __post_init__(self) -> None:
        if self.target is None:
            return
        secrets = dict(self.secrets)
        if not self.destinations:
            default = Destination(
                DEFAULT_DESTINATION,
                self.target,
                signing_secret=secrets.pop(TARGET_SIGNING_ENTRY, None),
            )
            msgspec.structs.force_setattr(self, "destinations", (default,))
            msgspec.structs.force_setattr(self, "secrets", secrets)
        msgspec.structs.force_setattr(self, "target", None)
        msgspec.structs.force_setattr(self, "v", 2)

    @property
    def active(self) -> bool:
        return self.status == "active"
