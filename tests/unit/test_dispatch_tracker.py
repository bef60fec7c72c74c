"""The partition tracker: commit points and the retry state carried in commit metadata."""

from __future__ import annotations

import pytest

from dispatchers.tracker import METADATA_BUDGET, PartitionTracker, RetryState

pytestmark = pytest.mark.unit


def test_commit_point_waits_for_the_lowest_unfinished_offset() -> None:
    tracker = PartitionTracker(committed=10)
    for offset in range(10, 15):
        tracker.add(offset)
    tracker.finish(11)
    tracker.finish(12)
    tracker.finish(14)
    offset, _ = tracker.commit_point()
    assert offset == 10
    tracker.finish(10)
    assert tracker.commit_point()[0] == 13
    tracker.finish(13)
    assert tracker.commit_point() == (15, "")


def test_a_successor_skips_what_was_finished_and_keeps_retry_state() -> None:
    tracker = PartitionTracker(committed=0)
    for offset in range(6):
        tracker.add(offset)
    for offset in (1, 2, 4):
        tracker.finish(offset)
    tracker.set_retry(0, RetryState(attempts=3, first_attempt_at=100.0, due_at=160.5))
    offset, metadata = tracker.commit_point()

    successor = PartitionTracker(offset, metadata)
    assert [o for o in range(6) if successor.finished_before(o)] == [1, 2, 4]
    assert successor.retries == {0: RetryState(3, 100.0, 160.5)}


def test_metadata_stays_within_kafkas_limit() -> None:
    tracker = PartitionTracker(committed=0)
    for offset in range(0, 4000):
        tracker.add(offset)
    for offset in range(1, 4000, 2):
        tracker.finish(offset)
    for offset in range(0, 4000, 2):
        tracker.set_retry(offset, RetryState(1, 1.0, 2.0))
    _, metadata = tracker.commit_point()
    assert len(metadata.encode()) <= METADATA_BUDGET


def test_foreign_metadata_is_ignored() -> None:
    tracker = PartitionTracker(7, "written by another tool")
    assert not tracker.finished_before(8)
    assert tracker.retries == {}
