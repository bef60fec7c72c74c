"""Every data-plane process's view of the trigger registry, read from the compacted topic.

The view reads the whole trigger-config topic outside any consumer group (every process needs
every trigger), compiles each config once when it arrives, and serves lookups from memory: nothing
on the event path ever queries the database or recompiles a config.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from aiokafka import TopicPartition

from runtime.kafka import reached, whole_topic_consumer
from runtime.metrics import CONFIG_TRIGGERS
from runtime.settings import Settings
from schemas.codec import RecordDecodeError, RecordPosition
from schemas.records import TRIGGER_CONFIG
from schemas.topics import TRIGGER_CONFIG as TRIGGER_CONFIG_TOPIC
from schemas.triggers import TriggerConfig

log = logging.getLogger("triggerline.config")

C = TypeVar("C")

# How long one fetch may wait for new records, which bounds how late a `sync` call is noticed.
SYNC_POLL_MS = 200


class TriggerConfigView(Generic[C]):
    """Trigger id -> compiled config, kept current by a background task.

    `compile` runs once per config revision. If it raises, the trigger is left out of the view
    (callers see it as unknown) and the error is logged; the view keeps running.
    """

    def __init__(
        self, settings: Settings, stage: str, compile: Callable[[TriggerConfig], C]
    ) -> None:
        self._settings = settings
        self._stage = stage
        self._compile = compile
        self._entries: dict[str, C] = {}
        self._caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sync_waiters: list[asyncio.Future[None]] = []

    @property
    def ready(self) -> bool:
        return self._caught_up.is_set()

    def get(self, trigger_id: str) -> C | None:
        return self._entries.get(trigger_id)

    def values(self) -> list[C]:
        """A snapshot of every compiled trigger, safe to iterate while the view changes."""
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"config-view-{self._stage}")

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        await asyncio.wait_for(self._caught_up.wait(), timeout_s)

    async def sync(self, timeout_s: float = 10.0) -> None:
        """Wait until the view has applied every record that is on the topic now."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sync_waiters.append(waiter)
        await asyncio.wait_for(waiter, timeout_s)

    async def lookup(self, trigger_id: str) -> C | None:
        """Like `get`, but an unknown id first brings the view up to date with the topic.

        A trigger created a moment ago may reach one process's view before another's; an
        event accepted for it must not be dropped as "unknown" by a view that lags behind.
        """
        entry = self._entries.get(trigger_id)
        if entry is None:
            await self.sync()
            entry = self._entries.get(trigger_id)
        return entry

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def apply(self, trigger_id: str, raw: bytes | None, position: RecordPosition) -> None:
        if raw is None:
            self._entries.pop(trigger_id, None)
        else:
            try:
                self._entries[trigger_id] = self._compile(TRIGGER_CONFIG.decode(raw, position))
            except RecordDecodeError as exc:
                log.error("undecodable trigger config", extra={"error": str(exc)})
                self._entries.pop(trigger_id, None)
            except Exception as exc:
                log.exception(
                    "trigger config failed to compile; the trigger is disabled here",
                    extra={"trigger_id": trigger_id, "error": str(exc)},
                )
                self._entries.pop(trigger_id, None)
        CONFIG_TRIGGERS.labels(self._stage).set(len(self._entries))

    async def _run(self) -> None:
        # A broker restart or a missing topic must not leave the process with a frozen view.
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("trigger config view failed; retrying", extra={"error": str(exc)})
                await asyncio.sleep(2)

    async def _follow(self) -> None:
        topic = TRIGGER_CONFIG_TOPIC.name(self._settings.topic_prefix)
        consumer = await whole_topic_consumer(self._settings, topic)
        try:
            partitions = list(consumer.assignment())
            # Catching up to the end offsets seen at start is what makes the view ready.
            target: dict[TopicPartition, int] | None = await consumer.end_offsets(partitions)
            waiting: list[asyncio.Future[None]] = []
            while True:
                if target is None and self._sync_waiters:
                    waiting, self._sync_waiters = self._sync_waiters, []
                    target = await consumer.end_offsets(partitions)
                if target is not None and await reached(consumer, target):
                    if not self._caught_up.is_set():
                        log.info("trigger config loaded", extra={"triggers": len(self._entries)})
                        self._caught_up.set()
                    for waiter in waiting:
                        if not waiter.done():
                            waiter.set_result(None)
                    waiting, target = [], None
                    continue
                batches = await consumer.getmany(timeout_ms=SYNC_POLL_MS)
                for tp, messages in batches.items():
                    for message in messages:
                        position = RecordPosition(tp.topic, tp.partition, message.offset)
                        key = message.key.decode() if message.key else ""
                        self.apply(key, message.value, position)
        finally:
            await consumer.stop()
