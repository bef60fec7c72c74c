"""TriggerConfigView.apply: how one trigger-config record changes the view, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from runtime import config_view
from runtime.config_view import TriggerConfigView
from runtime.secrets import SecretKeyError
from runtime.settings import Settings
from schemas.codec import RecordPosition
from schemas.topics import TRIGGER_CONFIG
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


def names_view(**overrides: Any) -> TriggerConfigView[str]:
    """A view whose compiled form is the trigger's name, which a test can refuse to compile
    ("broken") or to decrypt ("locked")."""

    def compile_name(record: TriggerConfig) -> str:
        if record.name == "broken":
            raise ValueError("this config does not compile")
        if record.name == "locked":
            raise SecretKeyError("secret was encrypted with key 'k2', which is not loaded")
        return record.name

    return TriggerConfigView(Settings().override(**overrides), "unit", compile_name)


class CountedSyncs:
    """Stands in for the view's catch-up with the topic (a Kafka round trip) and counts it;
    `arriving` are applied during the sync, as records read from the topic would be."""

    def __init__(self, view: TriggerConfigView[str]) -> None:
        self.count = 0
        self.arriving: list[TriggerConfig] = []
        self._view = view

    async def __call__(self, timeout_s: float = 10.0) -> None:
        self.count += 1
        for record in self.arriving:
            self._view.apply(record.trigger_id, TRIGGER_CONFIG.encode(record), AT)
        self.arriving.clear()


def counted(view: TriggerConfigView[str], monkeypatch: pytest.MonkeyPatch) -> CountedSyncs:
    syncs = CountedSyncs(view)
    monkeypatch.setattr(view, "sync", syncs)
    return syncs


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


def test_a_config_that_fails_to_compile_is_held_as_unusable_without_raising() -> None:
    view = names_view()
    view.apply("t1", TRIGGER_CONFIG.encode(config(name="support")), AT)

    # A later revision that no longer compiles must not keep serving the stale one either.
    view.apply("t1", TRIGGER_CONFIG.encode(config(name="broken")), AT)

    assert view.get("t1") is None
    assert len(view) == 0
    assert view.unusable("t1") == "its config does not compile: this config does not compile"
    # A trigger's own config is not the deployment's problem.
    assert view.problems() == []


async def test_an_undecryptable_config_is_unusable_and_a_deployment_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = names_view()
    syncs = counted(view, monkeypatch)
    view.apply("t1", TRIGGER_CONFIG.encode(config(name="locked")), AT)

    assert await view.lookup("t1") is None
    assert syncs.count == 0
    reason = (
        "secret was encrypted with key 'k2', which is not loaded; "
        "it is not among this process's TRIGGERLINE_SECRET_KEYS"
    )
    assert view.unusable("t1") == reason
    assert view.problems() == [f"trigger t1: {reason}"]

    # With the key back, the next revision is usable and the problem is gone.
    view.apply("t1", TRIGGER_CONFIG.encode(config(name="support")), AT)
    assert (view.get("t1"), view.unusable("t1"), view.problems()) == ("support", None, [])


def test_problems_name_a_few_triggers_and_count_the_rest() -> None:
    view = names_view()
    for n in range(8):
        view.apply(f"t{n}", TRIGGER_CONFIG.encode(config(f"t{n}", name="locked")), AT)

    problems = view.problems()

    assert len(problems) == config_view.PROBLEMS_NAMED + 1
    assert problems[-1] == "and 3 more triggers"


async def test_a_backlog_of_unknown_ids_costs_one_sync_per_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = names_view()
    syncs = counted(view, monkeypatch)

    for n in range(3000):
        assert await view.lookup(f"gone-{n % 10}") is None

    assert syncs.count == 10


async def test_a_trigger_created_after_it_was_found_absent_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = names_view()
    syncs = counted(view, monkeypatch)
    assert await view.lookup("t1") is None

    # The view's normal updates bring its config record in, which forgets the absence.
    view.apply("t1", TRIGGER_CONFIG.encode(config("t1")), AT)

    assert await view.lookup("t1") == "support"
    assert syncs.count == 1


async def test_absent_ids_are_bounded_and_retained_only_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = names_view(config_view__absent_max_ids=2, config_view__absent_retention_s=60)
    syncs = counted(view, monkeypatch)
    now = [1000.0]
    monkeypatch.setattr("runtime.config_view.time.monotonic", lambda: now[0])
    for trigger_id in ("a", "b", "c", "c", "b"):
        await view.lookup(trigger_id)
    # "a" was forgotten to keep two; "b" and "c" were answered from memory.
    assert syncs.count == 3
    await view.lookup("a")
    assert syncs.count == 4

    now[0] += 60
    syncs.arriving.append(config("b", name="created-late"))
    assert await view.lookup("b") == "created-late"
    assert syncs.count == 5


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
    assert (view.unusable("t1") or "").startswith("its config record is undecodable: ")
