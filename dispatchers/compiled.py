"""What a dispatcher needs to know about a trigger, compiled once per config revision.

A trigger has one compiled policy per destination, found by the name its routed records carry
(`RoutedEvent.destination`). A replay's records carry `REPLAY_DESTINATION` and are delivered to
the replay's alternate target under the first destination's timeout, retry policy and signing
key, without its rate limit or concurrency cap: a replay is paced by its own rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from dispatchers.backoff import RetryPolicy
from runtime import standard_webhooks
from runtime.secrets import Keyring
from schemas.triggers import REPLAY_DESTINATION, Destination, RateLimit, TriggerConfig


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    name: str
    timeout_s: float
    retry: RetryPolicy
    # The decoded HMAC key, or None when the destination has no signing secret.
    signing_key: bytes | None
    # None: as fast as the target answers (still paused by its Retry-After).
    rate_limit: RateLimit | None = None
    # Attempts in progress at once for this destination in one dispatcher; None: no own cap.
    max_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class DispatchTrigger:
    trigger_id: str
    project_id: str
    # By destination name, in the trigger's order.
    destinations: Mapping[str, DestinationPolicy]

    def policy(self, destination: str) -> DestinationPolicy | None:
        """The destination's policy; None if the trigger no longer has that destination."""
        if destination == REPLAY_DESTINATION:
            first = next(iter(self.destinations.values()), None)
            if first is None:
                return None
            return replace(first, name=REPLAY_DESTINATION, rate_limit=None, max_concurrency=None)
        return self.destinations.get(destination)


def compile_dispatch_trigger(config: TriggerConfig, keyring: Keyring) -> DispatchTrigger:
    """Raises (and the config view then holds the trigger as unusable, with the reason) when a
    signing secret cannot be decrypted or a limit is not a positive number."""
    return DispatchTrigger(
        trigger_id=config.trigger_id,
        project_id=config.project_id,
        destinations={d.name: _compile_destination(d, keyring) for d in config.destinations},
    )


def _compile_destination(destination: Destination, keyring: Keyring) -> DestinationPolicy:
    stored = destination.signing_secret
    key = None if stored is None else standard_webhooks.decode_secret(keyring.decrypt(stored))
    limit = destination.rate_limit
    if limit is not None and not (
        math.isfinite(limit.per_second) and limit.per_second > 0 and limit.burst >= 1
    ):
        raise ValueError(
            f"destination {destination.name}: rate_limit needs per_second > 0 and burst >= 1"
        )
    if destination.max_concurrency is not None and destination.max_concurrency < 1:
        raise ValueError(f"destination {destination.name}: max_concurrency must be at least 1")
    target = destination.target
    return DestinationPolicy(
        name=destination.name,
        timeout_s=target.timeout_s,
        retry=RetryPolicy(target.max_attempts, target.max_age_s),
        signing_key=key,
        rate_limit=limit,
        max_concurrency=destination.max_concurrency,
    )
