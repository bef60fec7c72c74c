"""The deduplication store on real RocksDB files in a temporary directory, and the marks of one
partition on top of it: buckets, expiry, the recorded changelog offset, commit and abort."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.dedupe import PartitionMarks, mark_key
from processors.dedupe_store import DedupeStore, StoreLocked, StoreMemory

pytestmark = pytest.mark.unit

WINDOW_MS = 60_000
MEMORY = StoreMemory.of(8 << 20)


def store(path: Path) -> DedupeStore:
    return DedupeStore(path, WINDOW_MS, MEMORY)


def test_a_committed_mark_is_seen_and_its_offset_survives_a_reopen(tmp_path: Path) -> None:
    first = store(tmp_path)
    assert not first.seen(b"t/e1")
    assert first.changelog_offset == 0
    first.apply([(b"t/e1", 1_000)], changelog_offset=7)
    assert first.seen(b"t/e1")
    assert not first.seen(b"t/e2")
    first.close()

    reopened = store(tmp_path)
    assert reopened.seen(b"t/e1")
    assert reopened.changelog_offset == 7
    reopened.close()


def test_marks_expire_two_windows_after_their_bucket(tmp_path: Path) -> None:
    marks = store(tmp_path)
    marks.apply([(b"old", 10)], 1)
    # One window later the old bucket is the one before the newest: still seen.
    marks.apply([(b"newer", WINDOW_MS + 10)], 2)
    assert marks.seen(b"old")
    # Two windows later it is dropped whole.
    marks.apply([(b"newest", 2 * WINDOW_MS + 10)], 3)
    assert not marks.seen(b"old")
    assert marks.seen(b"newer")
    assert marks.seen(b"newest")
    # A mark older than the live buckets is not written back.
    assert marks.apply([(b"late", 20)], 4) == 0
    assert not marks.seen(b"late")
    marks.close()

    reopened = store(tmp_path)
    assert not reopened.seen(b"old")
    assert reopened.seen(b"newer")
    reopened.close()


def test_a_store_open_elsewhere_is_reported_as_locked(tmp_path: Path) -> None:
    holder = store(tmp_path)
    with pytest.raises(StoreLocked):
        store(tmp_path)
    holder.close()


def test_clear_forgets_marks_and_offset(tmp_path: Path) -> None:
    marks = store(tmp_path)
    marks.apply([(b"k", 5)], 9)
    marks.clear()
    assert not marks.seen(b"k")
    assert marks.changelog_offset == 0
    marks.close()


def test_pending_and_committing_marks_count_as_seen_and_reach_the_store_on_commit(
    tmp_path: Path,
) -> None:
    partition = PartitionMarks(0, store(tmp_path))
    key = mark_key("trigger", "Ev1")
    assert not partition.seen_before(key, 1_000)
    assert partition.seen_before(key, 1_001)

    assert partition.begin_commit() == [(key, 1_000)]
    # While the transaction commits, the mark is neither pending nor stored, but still seen.
    assert partition.seen_before(key, 1_002)
    assert not partition.store.seen(key)
    assert not partition.seen_before(mark_key("trigger", "Ev2"), 1_003)

    partition.committed(changelog_offset=12)
    assert partition.store.seen(key)
    assert partition.store.changelog_offset == 12
    # Ev2 arrived during the commit: it belongs to the next transaction.
    assert partition.begin_commit() == [(mark_key("trigger", "Ev2"), 1_003)]
    partition.store.close()


def test_marks_written_to_a_transaction_still_open_commit_with_later_ones(tmp_path: Path) -> None:
    partition = PartitionMarks(0, store(tmp_path))
    first, second = mark_key("trigger", "Ev1"), mark_key("trigger", "Ev2")
    partition.seen_before(first, 1_000)
    assert partition.begin_commit() == [(first, 1_000)]
    # The transaction did not commit yet; a later mark joins it.
    partition.seen_before(second, 1_001)
    assert partition.begin_commit() == [(second, 1_001)]
    partition.committed(changelog_offset=2)
    assert partition.store.seen(first)
    assert partition.store.seen(second)
    partition.store.close()


def test_discarded_marks_leave_nothing_behind(tmp_path: Path) -> None:
    partition = PartitionMarks(0, store(tmp_path))
    key = mark_key("trigger", "Ev1")
    partition.seen_before(key, 1_000)
    partition.begin_commit()
    partition.discard()
    assert not partition.store.seen(key)
    assert not partition.seen_before(key, 1_000)
    partition.store.close()
