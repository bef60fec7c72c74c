"""One active cron producer: the member of a consumer group that owns the leader topic's only
partition. Kafka's group protocol does the election; a member that dies is replaced within one
session timeout. A member that merely stalls is fenced by the transactional producer (see
`ingest.cron.producer`), so it can never fire once another has taken over.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from runtime.kafka import group_consumer
from runtime.metrics import CRON_IS_LEADER
from runtime.settings import Settings
from schemas.topics import CRON_LEADER

log = logging.getLogger("triggerline.cron")


class LeaderElection:
    """Joins the cron group; `elected` is set while this member owns the leader partition."""

    def __init__(self, settings: Settings, session_timeout_ms: int = 10_000) -> None:
        self._topic = CRON_LEADER.name(settings.topics.prefix)
        self._consumer: AIOKafkaConsumer = group_consumer(
            settings,
            group=settings.group("cron"),
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 5),
        )
        self.elected = asyncio.Event()
        self.deposed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        return self.elected.is_set()

    async def start(self) -> None:
        self._consumer.subscribe([self._topic], listener=self)
        await self._consumer.start()
        self._task = asyncio.create_task(self._stay_in_group(), name="cron-election")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        # Leaving the group hands leadership over at once instead of after the session timeout.
        await self._consumer.stop()
        self._set(False)

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:
            self._set(False)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._set(bool(assigned))

    async def _stay_in_group(self) -> None:
        # A member that stops polling is evicted after max.poll.interval.ms; the topic carries
        # no records, so polling only keeps membership and runs the rebalance callbacks.
        while True:
            await self._consumer.getmany(timeout_ms=1000)

    def _set(self, leader: bool) -> None:
        if leader == self.elected.is_set():
            return
        CRON_IS_LEADER.set(1 if leader else 0)
        if leader:
            self.deposed.clear()
            self.elected.set()
            log.info("elected cron leader")
        else:
            self.elected.clear()
            self.deposed.set()
            log.info("no longer cron leader")


# aiokafka checks listeners against its ABC; registering keeps this class free of an untyped base.
ConsumerRebalanceListener.register(LeaderElection)
