"""What ingest needs to know about a trigger, compiled once per config revision.

Secrets are decrypted here, once per revision, never per request. A rotated secret therefore
takes effect as soon as this process's config view applies the new revision from the compacted
trigger-config topic, which is the whole "cache TTL" (normally well under a few seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.rate_limit import RateLimit, TokenBucket
from kinds import webhook_kind
from kinds.base import WebhookKind
from runtime.secrets import Keyring
from schemas.triggers import DefinitionSlug, TriggerConfig


@dataclass(frozen=True, slots=True)
class IngressTrigger:
    trigger_id: str
    project_id: str
    definition: DefinitionSlug
    # None for a kind whose events do not arrive as webhooks (schedules).
    kind: WebhookKind | None
    active: bool
    signing_secrets: tuple[str, ...]
    # Mutable state in a frozen record on purpose: the bucket lives and dies with the revision.
    inbound: TokenBucket = field(compare=False, repr=False)


def compile_ingress_trigger(
    config: TriggerConfig, keyring: Keyring, default_rate_limit: RateLimit
) -> IngressTrigger:
    kind = webhook_kind(config.definition)
    names = kind.signing_secrets if kind is not None else ()
    return IngressTrigger(
        trigger_id=config.trigger_id,
        project_id=config.project_id,
        definition=config.definition,
        kind=kind,
        active=config.active,
        signing_secrets=tuple(
            keyring.decrypt(config.secrets[name]) for name in names if name in config.secrets
        ),
        inbound=TokenBucket(RateLimit.from_config(config.config, default_rate_limit)),
    )
