"""TriggerConfigView.apply: how one trigger-config record changes the view, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runtime.config_view import TriggerConfigView
from runtime.settings import Settings
from schemas.codec import RecordPosition
from schemas.records import TRIGGER_CONFIG
from schemas.triggers import Target, TriggerConfig

pytestmark = pytest.mark.unit

AT = RecordPosition("test.trigger-config", 0, 7)


def config(trigger_id: str = "t1", name: str = "support") -> TriggerConfig:
    return TriggerConfig(
        trigger_id=trigger_id,
        project_id="p1",
        definition="slack",
        name=name,
        status="active",
        target=Target("noop"),
        updated_at=datetime(2026, 11, 27, tzinfo=UTC),
        revision=1,
    )


def names_view() -> TriggerConfigView[str]:
    """A view whose compiled form is the trigger's name, which a test can refuse to compile."""

    def compile_name(record: TriggerConfig) -> str:
        if record.name == "broken":
            raise ValueError("this config does not compile")
        return record.name

    return TriggerConfigView(Settings(), "unit", compile_name)


def test_a_record_is_compiled_into_the_view() -> None:
    view = names_view()

    view.apply("t1", TRIGGER_CONFIG.encode(config()), AT)

    assert view.get("t1") == "support"
    assert len(view) == 1


def test_a_tombstone_removes_the_trigger() -> None:
    view = names_view()
    view.apply("t1", TRIGGER_CONFIG.encode(config("t1")), AT)
    view.apply("t2", TRIGGER_CONFIG.encode(config("t2")), AT)

    view.apply("t1", None, AT)

    assert view.get("t1") is None
    assert view.get("t2") == "support"
    assert len(view) == 1


def test_a_tombstone_for_an_unknown_trigger_is_harmless() -> None:
    view = names_view()

    view.apply("never-seen", None, AT)

    assert len(view) == 0


def test_a_config_that_fails_to_compile_is_left_out_without_raising() -> None:
    view = names_view()
    view.apply("t1", TRIGGER_CONFIG.encode(config(name="support")), AT)

    # A later revision that no longer compiles must not keep serving the stale one either.
    view.apply("t1", TRIGGER_CONFIG.encode(config(name="broken")), AT)

    assert view.get("t1") is None
    assert len(view) == 0


@pytest.mark.parametrize(
    "value",
    [b"\xff not json", b"[1, 2]", b'{"v": 99, "trigger_id": "t1"}', b'{"v": 1}'],
    ids=["not-json", "not-an-object", "future-version", "missing-fields"],
)
def test_an_undecodable_value_is_left_out_without_raising(value: bytes) -> None:
    view = names_view()
    view.apply("t1", TRIGGER_CONFIG.encode(config()), AT)

    view.apply("t1", value, AT)

    assert view.get("t1") is None
    assert len(view) == 0
