"""The pieces of `triggerline groups reset` that need no broker: stages, times and the plan."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from deploy.group_reset import (
    CONSUMER_STAGES,
    STAGE_NAMES,
    GroupResetError,
    PartitionMove,
    ResetPlan,
    consumer_stage,
    format_plan,
    parse_target,
)
from schemas.topics import DELIVERY_LOG, RAW_EVENTS, ROUTED_EVENTS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# The cron producers' group only elects the owner of cron-leader; it reads no records.
ELECTION_GROUPS = {"cron"}


def groups_named_in(package: str) -> set[str]:
    """The literal stage names passed to `settings.group(...)` anywhere in a package."""
    names = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "group"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "settings"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(str(node.args[0].value))
    return names


def test_every_consumer_group_of_the_stages_can_be_reset() -> None:
    used = set().union(*(groups_named_in(p) for p in ("ingest", "processors", "dispatchers")))
    assert used - ELECTION_GROUPS == set(STAGE_NAMES)


def test_each_stage_resets_its_input_topic() -> None:
    assert {stage.name: stage.topic for stage in CONSUMER_STAGES} == {
        "processors": RAW_EVENTS,
        "dispatchers": ROUTED_EVENTS,
        "delivery-log-sink": DELIVERY_LOG,
    }
    assert consumer_stage("dispatchers").topic is ROUTED_EVENTS


def test_an_unknown_stage_names_the_valid_ones() -> None:
    with pytest.raises(GroupResetError) as refused:
        consumer_stage("ingest")
    assert str(refused.value) == (
        "unknown stage 'ingest'; stages with a consumer group: "
        "processors, dispatchers, delivery-log-sink"
    )


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-12-04T09:00:00Z", datetime(2026, 12, 4, 9, tzinfo=UTC)),
        (
            "2026-12-04T10:30:00.250+01:00",
            datetime(2026, 12, 4, 10, 30, 0, 250_000, tzinfo=timezone(timedelta(hours=1))),
        ),
    ],
)
def test_a_time_with_a_zone_is_the_target(text: str, moment: datetime) -> None:
    assert parse_target(text) == moment


def test_the_ends_are_targets_by_name() -> None:
    assert parse_target("earliest") == "earliest"
    assert parse_target("latest") == "latest"


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(GroupResetError, match="has no time zone; give one"):
        parse_target("2026-12-04T09:00:00")


def test_text_that_is_no_time_is_refused() -> None:
    with pytest.raises(GroupResetError, match="neither an ISO 8601 time nor `earliest`/`latest`"):
        parse_target("yesterday")


def test_a_group_resumes_at_the_log_start_without_a_usable_commit() -> None:
    assert PartitionMove(0, None, 10, log_start=4).records == -6
    # Retention deleted the committed offset's records: the group resumes at the start.
    assert PartitionMove(0, 2, 10, log_start=4).records == -6
    assert PartitionMove(0, 30, 10, log_start=4).records == 20


def test_the_plan_shows_each_partition_the_totals_and_what_a_reset_means() -> None:
    plan = ResetPlan(
        stage=consumer_stage("dispatchers"),
        group="tl.dispatchers",
        topic="tl.routed-events",
        target=datetime(2026, 12, 4, 9, tzinfo=UTC),
        partitions=(
            PartitionMove(0, 120, 80, log_start=0),
            PartitionMove(1, 5, 12, log_start=0),
            PartitionMove(2, None, 0, log_start=0),
        ),
        members=(),
    )

    text = format_plan(plan)

    assert text.splitlines()[:8] == [
        "group tl.dispatchers on tl.routed-events, to the first record at or after "
        "2026-12-04T09:00:00+00:00:",
        "",
        "partition   committed  new offset  records",
        "        0         120          80  40 to re-process",
        "        1           5          12  7 skipped",
        "        2        none           0  unchanged",
        "",
        "in all: 40 to re-process, 7 skipped",
    ]
    assert "note: The commit metadata of moved partitions (retry state" in text
    assert all(len(line) <= 88 for line in text.splitlines()[8:])
    assert [move.partition for move in plan.moving] == [0, 1, 2]
