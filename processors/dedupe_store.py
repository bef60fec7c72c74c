"""One raw partition's committed deduplication marks, on local disk in RocksDB.

Marks live in time buckets one deduplication window wide, one column family per bucket, stamped
with the raw record's timestamp (when ingest accepted the event), so a record read again after a
crash lands in the bucket it landed in the first time. A key counts as seen while its bucket is
the newest or the one before it: every repeat within a window is caught, and some up to twice
that. Older buckets are dropped whole, which frees their files at once, so the store holds at
most two windows of keys whatever the traffic.

RocksDB keeps the keys on disk; memory is bounded by one block cache and one write-buffer budget
shared by every partition's store in the process (`StoreMemory`), plus the bloom filters and
indexes of the open files (about 1.5 bytes per key). The store records, in the same atomic write
as its marks, the changelog offset it is complete up to, so after a restart it only reads the
changelog from there.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rocksdict import (
    BlockBasedOptions,
    Cache,
    ColumnFamily,
    Options,
    Rdict,
    WriteBatch,
    WriteBufferManager,
)

_BUCKET_PREFIX = "bucket-"
_DEFAULT_FAMILY = "default"
_OFFSET_KEY = b"changelog-offset"
# A key that is not in a bucket's bloom filter is known absent without reading a block; the
# false-positive rate of 10 bits per key is about 1%.
_BLOOM_BITS_PER_KEY = 10
_MAX_OPEN_FILES = 256


@dataclass(frozen=True)
class StoreMemory:
    """The memory every partition store of one process shares: a block cache and a budget for
    write buffers (charged to the same cache, so `total_bytes` caps both)."""

    cache: Cache
    write_buffers: WriteBufferManager
    total_bytes: int

    @classmethod
    def of(cls, total_bytes: int) -> StoreMemory:
        cache = Cache(total_bytes)
        write_buffers = WriteBufferManager.new_write_buffer_manager_with_cache(
            total_bytes // 2, False, cache
        )
        return cls(cache, write_buffers, total_bytes)


class StoreLocked(Exception):
    """Another live process has the store open (a second worker on this host, or a stalled one)."""


class DedupeStore:
    """The committed marks of one raw partition. Not safe to share between processes."""

    def __init__(self, path: Path, window_ms: int, memory: StoreMemory) -> None:
        self.path = path
        self._window_ms = window_ms
        self._memory = memory
        path.mkdir(parents=True, exist_ok=True)
        existing = Rdict.list_cf(str(path), self._options()) if (path / "CURRENT").exists() else []
        families = {name: self._options() for name in existing if name != _DEFAULT_FAMILY}
        try:
            self._db = Rdict(str(path), self._options(), column_families=families)
        except Exception as exc:
            if "lock" in str(exc).lower():
                raise StoreLocked(f"{path} is in use by another process") from exc
            raise
        # Bucket number -> (family view for reads, handle for batched writes).
        self._buckets: dict[int, tuple[Rdict, ColumnFamily]] = {}
        for name in families:
            bucket = int(name.removeprefix(_BUCKET_PREFIX))
            self._buckets[bucket] = (
                self._db.get_column_family(name),
                self._db.get_column_family_handle(name),
            )
        # The newest bucket first: a repeat is most likely recent.
        self._live: list[Rdict] = []
        self._expire()

    @property
    def changelog_offset(self) -> int:
        """The changelog offset the store is complete up to (the next one to read)."""
        raw = self._db.get(_OFFSET_KEY)
        return int.from_bytes(raw, "big") if isinstance(raw, bytes) else 0

    def seen(self, key: bytes) -> bool:
        for family in self._live:
            # The bloom filter answers most misses without touching a data block.
            if family.key_may_exist(key) and family.get(key) is not None:
                return True
        return False

    def apply(self, marks: Iterable[tuple[bytes, int]], changelog_offset: int) -> int:
        """Write committed marks (key, timestamp in ms) and the offset they bring the store up
        to, atomically; marks older than the live buckets are left out. Returns how many were
        written."""
        batch = WriteBatch(raw_mode=True)
        oldest = self._oldest_live()
        written = 0
        for key, timestamp_ms in marks:
            bucket = timestamp_ms // self._window_ms
            if bucket >= oldest:
                batch.put(key, b"", self._handle(bucket))
                written += 1
        batch.put(_OFFSET_KEY, changelog_offset.to_bytes(8, "big"))
        self._db.write(batch)
        # Only after the write: a bucket this batch wrote to may be the one that expires.
        self._expire()
        return written

    def key_count(self) -> int:
        """RocksDB's estimate of the keys in the live buckets."""
        return sum(
            family.property_int_value("rocksdb.estimate-num-keys") or 0 for family in self._live
        )

    def clear(self) -> None:
        """Drop every mark and the recorded offset (the changelog it came from is gone)."""
        for bucket in list(self._buckets):
            self._drop(bucket)
        self._db.delete(_OFFSET_KEY)
        self._live = []

    def close(self) -> None:
        self._live = []
        self._buckets = {}
        self._db.close()

    def destroy(self) -> None:
        """Close the store and delete its files."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def _handle(self, bucket: int) -> ColumnFamily:
        entry = self._buckets.get(bucket)
        if entry is None:
            name = f"{_BUCKET_PREFIX}{bucket}"
            family = self._db.create_column_family(name, self._options())
            entry = (family, self._db.get_column_family_handle(name))
            self._buckets[bucket] = entry
        return entry[1]

    def _oldest_live(self) -> int:
        return max(self._buckets) - 1 if self._buckets else 0

    def _expire(self) -> None:
        """Drops the buckets older than the one before the newest."""
        oldest = self._oldest_live()
        for bucket in [b for b in self._buckets if b < oldest]:
            self._drop(bucket)
        self._live = [self._buckets[b][0] for b in sorted(self._buckets, reverse=True)]

    def _drop(self, bucket: int) -> None:
        del self._buckets[bucket]
        self._db.drop_column_family(f"{_BUCKET_PREFIX}{bucket}")

    def _options(self) -> Options:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.create_missing_column_families(True)
        table = BlockBasedOptions()
        table.set_block_cache(self._memory.cache)
        table.set_bloom_filter(_BLOOM_BITS_PER_KEY, False)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self._memory.write_buffers)
        options.set_write_buffer_size(max(1 << 20, self._memory.total_bytes // 8))
        options.set_max_write_buffer_number(2)
        options.set_memtable_prefix_bloom_ratio(0.1)
        options.set_memtable_whole_key_filtering(True)
        options.set_max_open_files(_MAX_OPEN_FILES)
        options.set_max_background_jobs(1)
        # RocksDB's own info log, bounded.
        options.set_keep_log_file_num(1)
        options.set_max_log_file_size(1 << 20)
        return options
