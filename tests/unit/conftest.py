"""Fixtures shared by unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.dedupe import PartitionMarks
from processors.dedupe_store import DedupeStore, StoreMemory


@pytest.fixture
def marks(tmp_path: Path) -> Iterator[PartitionMarks]:
    """One raw partition's deduplication marks, in a store of their own."""
    store = DedupeStore(tmp_path, 3_600_000, StoreMemory.of(8 << 20))
    yield PartitionMarks(0, store)
    store.close()
