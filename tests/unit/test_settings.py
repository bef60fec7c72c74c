"""Settings come from the model: each variable is its section's prefix and the field's name, and
every variable the settings table documents is one the model reads."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from runtime.settings import Settings

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
# The settings table lives in one of these, whichever holds it.
DOCUMENTS = (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "operations.md")
DOCUMENTED_NAME = re.compile(r"\bTRIGGERLINE_[A-Z0-9_]+")


def documented_names() -> list[str]:
    names = {
        name
        for document in DOCUMENTS
        if document.exists()
        for line in document.read_text().splitlines()
        if line.lstrip().startswith("|")
        for name in DOCUMENTED_NAME.findall(line)
    }
    return sorted(names)


def section_models() -> dict[str | None, BaseSettings]:
    """The top-level model (key None) and each section, as built from an empty environment."""
    settings = Settings()
    models: dict[str | None, BaseSettings] = {None: settings}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseSettings):
            models[name] = value
    return models


def variables() -> dict[str, tuple[str | None, str]]:
    """Every environment variable Settings reads, with the section and field it sets."""
    read: dict[str, tuple[str | None, str]] = {}
    for section, model in section_models().items():
        prefix = model.model_config.get("env_prefix", "")
        for field, info in type(model).model_fields.items():
            if isinstance(getattr(model, field), BaseSettings):
                continue
            name = f"{prefix}{field}".upper()
            assert name not in read, f"{name} is read by both {read[name]} and {(section, field)}"
            read[name] = (section, field)
            assert info.alias is None
            assert info.validation_alias is None
    return read


def own_values(
    models: dict[str | None, BaseSettings], but: tuple[str | None, str]
) -> dict[tuple[str | None, str], Any]:
    """Every field's value but one, sections apart from the model that holds them."""
    return {
        (section, field): value
        for section, model in models.items()
        for field, value in model
        if not isinstance(value, BaseSettings) and (section, field) != but
    }


def another_value(current: Any, annotation: Any) -> Any:
    """A value that differs from `current` and passes the field's bounds."""
    choices = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return next(choice for choice in choices if choice != current)
    if isinstance(current, bool):
        return not current
    if isinstance(current, int) or (current is None and int in choices):
        return (current or 2) + 1
    if isinstance(current, float):
        return current * 2
    # Strings, paths and secrets.
    return "/changed" if current is None else type(current)("/changed")


def spelled(value: Any) -> str:
    """`value` as the environment spells it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


def test_no_two_fields_read_the_same_variable() -> None:
    assert len(variables()) > 50


# Read by measurement and fault-injection code only, and documented under the table.
UNTABULATED = {"TRIGGERLINE_PROCESSOR_EXACTLY_ONCE", "TRIGGERLINE_PROCESSOR_FAULT"}
SHORTHAND = re.compile(r"`(_[A-Z0-9_]+)`")
FULL_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def tabulated(name: str) -> bool:
    """Whether a settings-table row names the variable, in full or as a shorthand (`_CAP_S`
    after `TRIGGERLINE_DISPATCHER_BACKOFF_BASE_S`) that shares the row's first name's stem."""
    for document in DOCUMENTS:
        for line in document.read_text().splitlines():
            if not line.lstrip().startswith("|"):
                continue
            full = FULL_NAME.findall(line)
            if name in full:
                return True
            for tail in SHORTHAND.findall(line):
                stem = name.removesuffix(tail)
                if stem != name and any(other.startswith(stem + "_") for other in full):
                    return True
    return False


def test_every_variable_is_in_a_settings_table() -> None:
    missing = sorted(
        name for name in variables() if name not in UNTABULATED and not tabulated(name)
    )
    assert missing == []


def test_the_documents_hold_a_settings_table() -> None:
    assert "TRIGGERLINE_TOPIC_PREFIX" in documented_names()


@pytest.mark.parametrize("name", documented_names())
def test_every_documented_variable_sets_its_field(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = variables()
    assert name in read, f"{name} is documented but no setting reads it"
    section, field = read[name]
    before = section_models()
    model = before[section]
    expected = another_value(getattr(model, field), type(model).model_fields[field].annotation)

    monkeypatch.setenv(name, spelled(expected))
    after = section_models()

    assert getattr(after[section], field) == expected
    assert own_values(after, but=(section, field)) == own_values(before, but=(section, field))


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092", lambda s: s.kafka.bootstrap_servers),
        ("DATABASE_URL", "postgresql://db/x", lambda s: s.database.url.get_secret_value()),
    ],
)
def test_the_external_services_keep_their_conventional_names(
    name: str, value: str, read: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    assert read(Settings()) == value


def test_override_changes_a_section_field_and_a_top_level_one() -> None:
    settings = Settings()

    changed = settings.override(ingest__port=8181, log_level="DEBUG")

    assert (changed.ingest.port, changed.log_level) == (8181, "DEBUG")
    assert (settings.ingest.port, settings.log_level) == (8080, "INFO")
    assert changed.dispatcher == settings.dispatcher


@pytest.mark.parametrize("name", ["ingest__nope", "nope", "ingest", "log_level__x", "nope__port"])
def test_override_refuses_a_name_settings_does_not_have(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        Settings().override(**{name: 1})


def test_override_applies_the_same_bounds_as_the_environment() -> None:
    with pytest.raises(ValidationError, match="max_connections"):
        Settings().override(ingest__max_connections=1)


def test_override_keeps_what_the_environment_set_marked_as_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/x")

    changed = Settings().override(secret_keys=SecretStr("k1:x"), database__url="postgresql://db/y")
    untouched = Settings().override(secret_keys=SecretStr("k1:x"))

    assert untouched.database.model_fields_set == {"url"}
    assert untouched.kafka.model_fields_set == set()
    assert changed.database.url.get_secret_value() == "postgresql://db/y"
    assert changed.database.model_fields_set == {"url"}
