"""What ingest needs to know about a trigger, compiled once per config revision."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.secrets import Keyring
from schemas.triggers import DefinitionSlug, TriggerConfig

# Definitions that receive webhooks, and the secrets that verify them. The `_PREVIOUS` secret
# stays valid while a sender switches to a rotated one.
SIGNING_SECRETS: dict[DefinitionSlug, tuple[str, ...]] = {
    "slack": ("SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET_PREVIOUS"),
    "webhook": ("WEBHOOK_SECRET", "WEBHOOK_SECRET_PREVIOUS"),
}


@dataclass(frozen=True, slots=True)
class IngressTrigger:
    trigger_id: str
    project_id: str
    definition: DefinitionSlug
    active: bool
    signing_secrets: tuple[str, ...]

    @property
    def receives_webhooks(self) -> bool:
        return self.definition in SIGNING_SECRETS


def compile_ingress_trigger(config: TriggerConfig, keyring: Keyring) -> IngressTrigger:
    names = SIGNING_SECRETS.get(config.definition, ())
    return IngressTrigger(
        trigger_id=config.trigger_id,
        project_id=config.project_id,
        definition=config.definition,
        active=config.active,
        signing_secrets=tuple(
            keyring.decrypt(config.secrets[name]) for name in names if name in config.secrets
        ),
    )
