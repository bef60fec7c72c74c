"""Checks a trigger's parts for meaning before they are stored; errors name the field path.

Messages never include a submitted secret value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from ingest.registry.errors import FieldError, Invalid
from kinds import TriggerKind, secret_problem
from runtime.kafka_targets import KafkaTargetPolicy
from schemas.triggers import TARGET_SIGNING_ENTRY, Target

KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def path_of(loc: Iterable[int | str]) -> str:
    """`("body", "config", "event_types", 2)` -> `config.event_types[2]`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("body", "query", "path"):
            path += f".{part}" if path else str(part)
    return path


def pydantic_errors(error: ValidationError, prefix: str) -> list[FieldError]:
    return [FieldError(path_of([prefix, *e["loc"]]), e["msg"]) for e in error.errors()]


def validated_config(definition: TriggerKind, raw: Any) -> dict[str, Any]:
    """The normalized config, or Invalid with `config.`-prefixed paths."""
    stored_as_jsonb = nul_errors("config", raw)
    if stored_as_jsonb:
        raise Invalid(stored_as_jsonb)
    try:
        return definition.validate_config(raw)
    except ValidationError as error:
        raise Invalid(pydantic_errors(error, "config")) from None


def target_errors(
    target: Target, has_signing_secret: bool, topics: KafkaTargetPolicy, path: str = "target"
) -> list[FieldError]:
    """What is wrong with a target, under `path` (`destinations[1].target`, say)."""
    ref, signing_secret = f"{path}.ref", f"{path}.signing_secret"
    errors: list[FieldError] = []
    if target.kind == "http":
        url = urlsplit(target.ref)
        if url.scheme not in ("http", "https") or not url.hostname:
            errors.append(FieldError(ref, "an http target's ref is an http(s) URL"))
        if not has_signing_secret:
            errors.append(
                FieldError(signing_secret, "an http target needs a signing secret (whsec_<base64>)")
            )
    elif has_signing_secret:
        errors.append(FieldError(signing_secret, "only http targets are signed"))
    if target.kind == "kafka":
        refusal = topics.refusal(target.ref)
        if not KAFKA_TOPIC.match(target.ref):
            errors.append(FieldError(ref, "a kafka target's ref is a topic name ([A-Za-z0-9._-])"))
        elif refusal is not None:
            errors.append(FieldError(ref, refusal))
    if target.kind == "noop" and target.ref:
        errors.append(FieldError(ref, "a noop target has no ref"))
    return errors


def null_errors(given: BaseModel, fields: Iterable[str]) -> list[FieldError]:
    """Fields of a partial update that were given as null but cannot be cleared."""
    return [
        FieldError(field, "cannot be null")
        for field in fields
        if field in given.model_fields_set and getattr(given, field) is None
    ]


def secret_errors(prefix: str, secrets: Mapping[str, str | None]) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, value in secrets.items():
        path = f"{prefix}.{name}"
        if name == TARGET_SIGNING_ENTRY:
            errors.append(FieldError(path, "set this through target.signing_secret"))
        elif value is not None and (problem := secret_problem(name, value)) is not None:
            errors.append(FieldError(path, problem))
    return errors


def secret_count_errors(path: str, count: int, maximum: int) -> list[FieldError]:
    if count <= maximum:
        return []
    return [
        FieldError(path, f"at most {maximum} secrets (TRIGGERLINE_MAX_SECRETS); this has {count}")
    ]


def nul_errors(path: str, value: Any) -> list[FieldError]:
    """Where a JSON value holds a NUL character, which PostgreSQL cannot store in text or jsonb."""
    if isinstance(value, str):
        return [FieldError(path, "must not contain NUL characters")] if "\x00" in value else []
    if isinstance(value, Mapping):
        errors: list[FieldError] = []
        for key, item in value.items():
            if "\x00" in str(key):
                errors.append(FieldError(path, "keys must not contain NUL characters"))
            errors += nul_errors(f"{path}.{key}", item)
        return errors
    if isinstance(value, list):
        return [
            error
            for index, item in enumerate(value)
            for error in nul_errors(f"{path}[{index}]", item)
        ]
    return []


def missing_secret_errors(definition: TriggerKind, available: Iterable[str]) -> list[FieldError]:
    missing = sorted(set(definition.required_secrets) - set(available))
    return [
        FieldError(
            f"secrets.{name}",
            f"a {definition.slug} trigger needs this secret, from the trigger or its environment",
        )
        for name in missing
    ]
