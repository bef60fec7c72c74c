"""HTML forms to and from the control plane's inputs: what a form shows for a stored trigger or
destination, and the input a submitted form becomes.

Form fields are strings. An empty optional field is left out, so the input's default applies;
anything else goes to the same pydantic inputs the API validates (`ingest.registry.inputs`), so
a form gets the API's own messages and field paths. Kept free of I/O, for unit tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.registry.errors import FieldError
from schemas.triggers import Destination

# Trigger config fields with their own controls on the edit form, not in the config JSON.
OWN_CONTROLS = ("filter", "event_types")
TARGET_FIELDS = ("kind", "ref", "display_name", "timeout_s", "max_attempts", "max_age_s")


@dataclass(frozen=True, slots=True)
class FormState:
    """A form as submitted, and what was wrong with it; shown again with status 422 (or the
    refusal's own status)."""

    values: dict[str, str]
    errors: list[FieldError] = field(default_factory=list)

    def error_for(self, *paths: str) -> str | None:
        """The messages for these field paths (or paths under them), joined."""
        found = [
            e.message
            for e in self.errors
            if any(e.path == p or e.path.startswith((p + ".", p + "[")) for p in paths)
        ]
        return "; ".join(found) or None


def lines(text: str) -> list[str]:
    """One entry a line (or comma-separated), blanks dropped."""
    return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


def trigger_values(name: str, config: dict[str, Any]) -> dict[str, str]:
    """The edit form of a stored trigger."""
    rest = {key: value for key, value in config.items() if key not in OWN_CONTROLS}
    return {
        "name": name,
        "config": json.dumps(rest, indent=2, sort_keys=True, ensure_ascii=False),
        "filter": str(config.get("filter") or ""),
        "event_types": "\n".join(config.get("event_types") or []),
    }


def trigger_update(
    values: dict[str, str], controls: tuple[str, ...]
) -> tuple[dict[str, Any], list[FieldError]]:
    """The `TriggerUpdate` body an edit form asks for, and what keeps it from being one.
    `controls` are the kind's fields among OWN_CONTROLS (a cron trigger has neither)."""
    errors: list[FieldError] = []
    text = values.get("config", "").strip() or "{}"
    try:
        config = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        errors.append(FieldError("config", f"not valid JSON: {exc}"))
        config = {}
    if not isinstance(config, dict):
        errors.append(FieldError("config", "a JSON object ({...})"))
        config = {}
    for key in OWN_CONTROLS:
        if key in config:
            errors.append(FieldError(f"config.{key}", f"set `{key}` in its own field"))
    if "filter" in controls and values.get("filter", "").strip():
        config["filter"] = values["filter"]
    if "event_types" in controls and lines(values.get("event_types", "")):
        config["event_types"] = lines(values["event_types"])
    return {"name": values.get("name", ""), "config": config}, errors


def edit_errors(errors: list[FieldError]) -> list[FieldError]:
    """Refusals of an edit, named by the form's fields: `config.filter` is the filter field."""
    named = []
    for error in errors:
        path = error.path
        for key in OWN_CONTROLS:
            if path == f"config.{key}" or path.startswith(f"config.{key}["):
                path = key + path.removeprefix(f"config.{key}")
        named.append(FieldError(path, error.message))
    return named


def destination_values(destination: Destination | None) -> dict[str, str]:
    """The form of a stored destination; of a new one when None."""
    if destination is None:
        return {"name": "", "kind": "http", "filter": "", "transform": ""}
    target = destination.target
    rate = destination.rate_limit
    return {
        "name": destination.name,
        **{key: _text(getattr(target, key)) for key in TARGET_FIELDS},
        "filter": destination.filter or "",
        "transform": destination.transform or "",
        "per_second": "" if rate is None else _text(rate.per_second),
        "burst": "" if rate is None else _text(rate.burst),
        "max_concurrency": _text(destination.max_concurrency),
    }


def destination_body(values: dict[str, str], *, replacing: bool = False) -> dict[str, Any]:
    """The `DestinationIn` body a destination form asks for; `replacing`, the whole
    `DestinationUpdate` (blank optional fields as null, which clears them). A blank signing
    secret is left out, so an http target keeps its current one."""
    target: dict[str, Any] = {
        key: values[key].strip() for key in TARGET_FIELDS if values.get(key, "").strip()
    }
    if values.get("signing_secret", ""):
        target["signing_secret"] = values["signing_secret"]
    body: dict[str, Any] = {"name": values.get("name", "").strip(), "target": target}
    for key in ("filter", "transform"):
        if values.get(key, "").strip():
            body[key] = values[key]
    per_second, burst = values.get("per_second", "").strip(), values.get("burst", "").strip()
    if per_second or burst:
        body["rate_limit"] = {
            "per_second": per_second or None,
            **({"burst": burst} if burst else {}),
        }
    if values.get("max_concurrency", "").strip():
        body["max_concurrency"] = values["max_concurrency"].strip()
    if replacing:
        for key in ("filter", "transform", "rate_limit", "max_concurrency"):
            body.setdefault(key, None)
    return body


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
