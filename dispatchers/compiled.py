"""What a dispatcher needs to know about a trigger, compiled once per config revision."""

from __future__ import annotations

from dataclasses import dataclass

from dispatchers.backoff import RetryPolicy
from runtime import standard_webhooks
from runtime.secrets import Keyring
from schemas.triggers import TARGET_SIGNING_ENTRY, TriggerConfig


@dataclass(frozen=True, slots=True)
class DispatchTrigger:
    trigger_id: str
    project_id: str
    timeout_s: float
    retry: RetryPolicy
    # The decoded HMAC key, or None when the trigger has no signing secret.
    signing_key: bytes | None


def compile_dispatch_trigger(config: TriggerConfig, keyring: Keyring) -> DispatchTrigger:
    stored = config.secrets.get(TARGET_SIGNING_ENTRY)
    key = None if stored is None else standard_webhooks.decode_secret(keyring.decrypt(stored))
    return DispatchTrigger(
        trigger_id=config.trigger_id,
        project_id=config.project_id,
        timeout_s=config.target.timeout_s,
        retry=RetryPolicy(config.target.max_attempts, config.target.max_age_s),
        signing_key=key,
    )
