"""Every producer places a key where aiokafka's (and the Java client's) default partitioner
would, so that one correlation id stays on one partition whoever writes it."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from runtime.kafka import default_partitioner, durable_producer
from runtime.settings import Settings


@given(key=st.binary(max_size=80), partitions=st.integers(min_value=1, max_value=64))
def test_a_key_lands_where_the_default_partitioner_puts_it(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    expected = DefaultPartitioner()(key, all_partitions, all_partitions)
    assert default_partitioner(key, all_partitions, all_partitions) == expected


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    assert default_partitioner(None, [0, 1, 2, 3], [2]) == 2


async def test_durable_producers_use_it() -> None:
    producer = durable_producer(Settings())
    try:
        assert producer._partitioner is default_partitioner
    finally:
        await producer.stop()
