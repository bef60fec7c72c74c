"""A failed transaction step stops the processor worker instead of being logged and skipped.

faust's own producer logs such failures and carries on, after which its consumer counts the
offsets as committed though their outputs were aborted. The transactional producers here are
fakes at the aiokafka seam; what is tested is which outcomes stop the worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import ProducerFenced
from faust.types import TP

import processors.faust_engine.transport
from processors.faults import Faults
from processors.faust_engine.transport import TransactionGuardedProducer

pytestmark = pytest.mark.unit


class WorkerStopped(Exception):
    pass


class FakeTransactionalProducer:
    def __init__(self, *, in_transaction: bool = True, fails: Exception | None = None) -> None:
        self.calls: list[str] = []
        self._in_transaction = in_transaction
        self._fails = fails
        self._txn_manager = self

    def is_in_transaction(self) -> bool:
        return self._in_transaction

    async def _step(self, name: str) -> None:
        self.calls.append(name)
        if self._fails is not None:
            raise self._fails

    async def begin_transaction(self) -> None:
        await self._step("begin")

    async def commit_transaction(self) -> None:
        await self._step("commit")

    async def abort_transaction(self) -> None:
        await self._step("abort")

    async def send_offsets_to_transaction(self, offsets: Any, group_id: str) -> None:
        await self._step("send_offsets")


@pytest.fixture(autouse=True)
def stop_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def stop(reason: BaseException) -> None:
        raise WorkerStopped(repr(reason))

    monkeypatch.setattr(processors.faust_engine.transport, "stop_worker_now", stop)


def producer_with(**producers: FakeTransactionalProducer) -> TransactionGuardedProducer:
    producer = TransactionGuardedProducer.__new__(TransactionGuardedProducer)
    producer._transaction_producers = dict(producers)
    producer._trn_locks = {tid: asyncio.Lock() for tid in producers}
    # The shared (non-transactional) producer is not part of these tests.
    vars(producer)["_ensure_producer"] = lambda: None
    producer.faults = Faults("")
    producer.on_committed = lambda partition: None
    return producer


async def test_a_fenced_commit_stops_the_worker() -> None:
    producer = producer_with(t0=FakeTransactionalProducer(fails=ProducerFenced()))
    with pytest.raises(WorkerStopped, match="ProducerFenced"):
        await producer.commit_transaction("t0")


async def test_committing_offsets_for_a_producer_it_no_longer_has_stops_the_worker() -> None:
    producer = producer_with(t0=FakeTransactionalProducer())
    with pytest.raises(WorkerStopped, match="t1"):
        await producer.commit_transactions({"t1": {}}, "group")


async def test_a_failed_abort_stops_the_worker() -> None:
    producer = producer_with(t0=FakeTransactionalProducer(fails=RuntimeError("broker gone")))
    with pytest.raises(WorkerStopped, match="broker gone"):
        await producer.abort_transaction("t0")


async def test_committed_offsets_start_the_next_transaction() -> None:
    t0 = FakeTransactionalProducer()
    await producer_with(t0=t0).commit_transactions({"t0": {}}, "group")
    assert t0.calls == ["send_offsets", "commit", "begin"]


async def test_each_committed_partition_is_reported_after_its_commit_only() -> None:
    t0, t1 = FakeTransactionalProducer(), FakeTransactionalProducer(fails=ProducerFenced())
    producer = producer_with(t0=t0, t1=t1)
    reported: list[int] = []
    producer.on_committed = reported.append
    with pytest.raises(WorkerStopped):
        await producer.commit_transactions(
            {"t0": {TP("raw", 3): 10}, "t1": {TP("raw", 4): 20}}, "group"
        )
    assert reported == [3]


async def test_a_kept_partition_s_open_transaction_carries_on_after_a_rebalance() -> None:
    kept = FakeTransactionalProducer(in_transaction=True)
    ended = FakeTransactionalProducer(in_transaction=False)
    producer = producer_with(kept=kept, ended=ended)
    await producer.begin_transaction("kept")
    await producer.begin_transaction("ended")
    assert (kept.calls, ended.calls) == ([], ["begin"])
