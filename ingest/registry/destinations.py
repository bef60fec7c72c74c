"""A trigger's destinations as the control plane builds, checks and shows them.

A destination is stored as `schemas.triggers.Destination`: its target without the write-only
signing secret, which is kept beside it encrypted. An http target given without a signing
secret keeps the one stored for the destination of the same name, so a caller can change a
URL without handing the secret over again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ingest.registry.errors import FieldError
from ingest.registry.inputs import DestinationFields, RateLimitIn, TargetIn
from ingest.registry.validation import target_errors
from runtime import standard_webhooks
from runtime.kafka_targets import KafkaTargetPolicy
from schemas.triggers import Destination, RateLimit, Target

# Encrypts a secret value on its way into the registry.
Seal = Callable[[str], str]


def target_of(given: TargetIn) -> Target:
    """The stored target: what was given, less the write-only signing secret."""
    return Target(**given.model_dump(exclude={"signing_secret"}))


def rate_limit_of(given: RateLimitIn | None) -> RateLimit | None:
    return None if given is None else RateLimit(given.per_second, given.burst)


def with_target(current: Destination, given: TargetIn, seal: Seal) -> Destination:
    """`current` sending to the given target. Its signing secret is the one given, or for an
    http target given without one, the current one; other kinds are not signed."""
    signing_secret: str | None = None
    if given.signing_secret is not None:
        signing_secret = seal(given.signing_secret)
    elif given.kind == "http":
        signing_secret = current.signing_secret
    return msgspec.structs.replace(current, target=target_of(given), signing_secret=signing_secret)


def destination_of(
    given: DestinationFields, name: str, current: Destination | None, seal: Seal
) -> Destination:
    """The destination `name` as given in full; `current` is the one stored under that name,
    whose signing secret an http target given without one keeps."""
    built = Destination(
        name,
        target_of(given.target),
        filter=given.filter,
        transform=given.transform,
        rate_limit=rate_limit_of(given.rate_limit),
        max_concurrency=given.max_concurrency,
        signing_secret=None if current is None else current.signing_secret,
    )
    return with_target(built, given.target, seal)


def target_checks(
    destination: Destination, given: TargetIn, where: str, topics: KafkaTargetPolicy
) -> list[FieldError]:
    """What is wrong with a destination's new target; paths start with `where` (`""` or
    `destinations[1].`)."""
    path = f"{where}target"
    errors = target_errors(destination.target, destination.signing_secret is not None, topics, path)
    if given.signing_secret is not None and not standard_webhooks.is_secret(given.signing_secret):
        message = f"signing secrets look like {standard_webhooks.SECRET_FORMAT}"
        errors.append(FieldError(f"{path}.signing_secret", message))
    return errors


def list_errors(destinations: Sequence[Destination], maximum: int) -> list[FieldError]:
    """A trigger's destinations as a whole: at most `maximum`, each name once."""
    errors: list[FieldError] = []
    if len(destinations) > maximum:
        errors.append(
            FieldError(
                "destinations",
                f"at most {maximum} destinations (TRIGGERLINE_MAX_DESTINATIONS); this has "
                f"{len(destinations)}",
            )
        )
    seen: set[str] = set()
    for index, destination in enumerate(destinations):
        if destination.name in seen:
            errors.append(
                FieldError(
                    f"destinations[{index}].name",
                    f"another destination is named {destination.name!r}; names are unique "
                    "within a trigger",
                )
            )
        seen.add(destination.name)
    return errors


def shown(destination: Destination) -> dict[str, Any]:
    """A destination as the API and the CLI show it: whether it has a signing secret, never
    the secret (not even encrypted)."""
    out: dict[str, Any] = msgspec.to_builtins(destination)
    signing_secret = out.pop("signing_secret")
    out["target"]["has_signing_secret"] = signing_secret is not None
    return out
