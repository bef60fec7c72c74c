"""Every data-plane process's view of the trigger registry, read from the compacted topic.

The view reads the whole trigger-config topic outside any consumer group (every process needs
every trigger), compiles each config once when it arrives, and serves lookups from memory: nothing
on the event path ever queries the database or recompiles a config.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from runtime.kafka import reached, standalone_consumer, whole_topic_consumer
from runtime.metrics import CONFIG_TRIGGERS, CONFIG_UNUSABLE_TRIGGERS
from runtime.secrets import SecretKeyError
from runtime.settings import Settings
from schemas.codec import RecordDecodeError, RecordPosition
from schemas.topics import TRIGGER_CONFIG
from schemas.triggers import TriggerConfig

log = logging.getLogger("triggerline.config")

C = TypeVar("C")

# How long one fetch waits for new records; a `sync` call cuts the wait short.
SYNC_POLL_MS = 200
# Unusable triggers named by `problems`; the rest are counted.
PROBLEMS_NAMED = 5


class TriggerConfigView(Generic[C]):
    """Trigger id -> compiled config, kept current by a background task.

    `compile` runs once per config revision. If it raises, the trigger is held as unusable
    with the reason (`unusable`), and the view keeps running. A failure to decrypt its secrets
    is the deployment's problem, not the trigger's: it is listed by `problems` for readiness.

    Ids found absent after a sync are remembered for a while (bounded), so that a backlog of
    events for deleted or unknown triggers costs a sync per retention, not one per event. Ids
    are never reused, so a remembered id only reappears through a config record, whose arrival
    forgets it.
    """

    def __init__(
        self, settings: Settings, stage: str, compile: Callable[[TriggerConfig], C]
    ) -> None:
        self._settings = settings
        self._stage = stage
        self._compile = compile
        self._entries: dict[str, C] = {}
        # Trigger id -> (reason, whether the deployment's keys are at fault); one per config
        # record, so bounded by the topic as `_entries` is.
        self._unusable: dict[str, tuple[str, bool]] = {}
        # Trigger id -> when a sync found it absent (monotonic), oldest first.
        self._absent: dict[str, float] = {}
        self._absent_ttl_s = settings.config_view.absent_retention_s
        self._absent_max = settings.config_view.absent_max_ids
        self._caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sync_waiters: list[asyncio.Future[None]] = []
        self._sync_requested = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self._caught_up.is_set()

    def get(self, trigger_id: str) -> C | None:
        return self._entries.get(trigger_id)

    def unusable(self, trigger_id: str) -> str | None:
        """Why a trigger whose config is on the topic cannot be used here, or None."""
        held = self._unusable.get(trigger_id)
        return None if held is None else held[0]

    def problems(self) -> list[str]:
        """Deployment problems: configs this process cannot decrypt (names a few)."""
        failing = [(tid, reason) for tid, (reason, keys) in self._unusable.items() if keys]
        named = [f"trigger {tid}: {reason}" for tid, reason in failing[:PROBLEMS_NAMED]]
        if len(failing) > PROBLEMS_NAMED:
            named.append(f"and {len(failing) - PROBLEMS_NAMED} more triggers")
        return named

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
        self._sync_requested.set()
        await asyncio.wait_for(waiter, timeout_s)

    async def lookup(self, trigger_id: str) -> C | None:
        """Like `get`, but an unknown id first brings the view up to date with the topic.

        A trigger created a moment ago may reach one process's view before another's; an
        event accepted for it must not be dropped as "unknown" by a view that lags behind.
        """
        entry = self._entries.get(trigger_id)
        if entry is not None or trigger_id in self._unusable or self._known_absent(trigger_id):
            return entry
        await self.sync()
        entry = self._entries.get(trigger_id)
        if entry is None and trigger_id not in self._unusable:
            self._absent.pop(trigger_id, None)
            self._absent[trigger_id] = time.monotonic()
            while len(self._absent) > self._absent_max:
                del self._absent[next(iter(self._absent))]
        return entry

    def _known_absent(self, trigger_id: str) -> bool:
        now = time.monotonic()
        # Oldest first: expired entries leave from the front.
        while self._absent and now - next(iter(self._absent.values())) >= self._absent_ttl_s:
            del self._absent[next(iter(self._absent))]
        return trigger_id in self._absent

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def apply(self, trigger_id: str, raw: bytes | None, position: RecordPosition) -> None:
        self._entries.pop(trigger_id, None)
        self._unusable.pop(trigger_id, None)
        if raw is not None:
            self._absent.pop(trigger_id, None)
            try:
                self._entries[trigger_id] = self._compile(TRIGGER_CONFIG.decode(raw, position))
            except RecordDecodeError as exc:
                log.error("undecodable trigger config", extra={"error": str(exc)})
                self._unusable[trigger_id] = (f"its config record is undecodable: {exc}", False)
            except SecretKeyError as exc:
                reason = f"{exc}; it is not among this process's TRIGGERLINE_SECRET_KEYS"
                log.error(
                    "trigger config cannot be decrypted",
                    extra={"trigger_id": trigger_id, "error": reason},
                )
                self._unusable[trigger_id] = (reason, True)
            except Exception as exc:
                log.exception(
                    "trigger config failed to compile; the trigger is unusable here",
                    extra={"trigger_id": trigger_id, "error": str(exc)},
                )
                self._unusable[trigger_id] = (f"its config does not compile: {exc}", False)
        CONFIG_TRIGGERS.labels(self._stage).set(len(self._entries))
        CONFIG_UNUSABLE_TRIGGERS.labels(self._stage).set(len(self._unusable))

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
        topic = TRIGGER_CONFIG.name(self._settings.topics.prefix)
        consumer = await whole_topic_consumer(self._settings, topic)
        # End offsets come over a connection of their own: on the reading consumer's, a
        # ListOffsets request queues behind the fetch long-poll, half a second per sync.
        offsets = standalone_consumer(self._settings)
        try:
            await offsets.start()
            partitions = list(consumer.assignment())
            # Catching up to the end offsets seen at start is what makes the view ready.
            target: dict[TopicPartition, int] | None = await offsets.end_offsets(partitions)
            waiting: list[asyncio.Future[None]] = []
            while True:
                if target is None and self._sync_waiters:
                    waiting, self._sync_waiters = self._sync_waiters, []
                    self._sync_requested.clear()
                    target = await offsets.end_offsets(partitions)
                if target is not None and await reached(consumer, target):
                    if not self._caught_up.is_set():
                        log.info("trigger config loaded", extra={"triggers": len(self._entries)})
                        self._caught_up.set()
                    for waiter in waiting:
                        if not waiter.done():
                            waiter.set_result(None)
                    waiting, target = [], None
                    continue
                batches = await self._fetch(consumer, waiting_for_sync=target is None)
                for tp, messages in batches.items():
                    for message in messages:
                        position = RecordPosition(tp.topic, tp.partition, message.offset)
                        key = message.key.decode() if message.key else ""
                        self.apply(key, message.value, position)
        finally:
            await offsets.stop()
            await consumer.stop()

    async def _fetch(
        self, consumer: AIOKafkaConsumer, *, waiting_for_sync: bool
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """Records that arrived within the poll, or none as soon as a sync is requested.

        A backlog of events for unknown triggers costs one sync each, in partition order: each
        must start at once, not at the end of a poll. A wait for records that is cancelled
        takes none (aiokafka drains its buffer without awaiting), so nothing is skipped.
        """
        fetch: asyncio.Future[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]
        fetch = asyncio.ensure_future(consumer.getmany(timeout_ms=SYNC_POLL_MS))
        if not waiting_for_sync:
            # Catching up: the records are what the waiting syncs need.
            return await fetch
        wake = asyncio.ensure_future(self._sync_requested.wait())
        await asyncio.wait((fetch, wake), return_when=asyncio.FIRST_COMPLETED)
        wake.cancel()
        fetch.cancel()
        await asyncio.wait((fetch,))
        return {} if fetch.cancelled() else fetch.result()
