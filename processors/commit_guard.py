"""Keeps faust's transaction commits from cutting one raw event's processing in two.

faust commits on a timer: it snapshots the acknowledged offsets, then commits each source
partition's transaction. An event being processed at that moment may already have sent its
routed record into the transaction while its offset is not in the snapshot; a crash before the
next commit then leaves the routed record committed and the event unconsumed, and the restart
routes it again. So each event is handled and acknowledged under one lock, and the commit
takes the same lock, after flushing the table changelog writes faust buffers (the
deduplication marks), which must land in the same transaction as their event's offset.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CommitGuard:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()

    def install(self, app: Any) -> None:
        """Wraps the consumer's commit; call once the app's consumer exists."""
        consumer = app.consumer
        commit = consumer.commit
        producer = app.producer

        async def guarded_commit(*args: Any, **kwargs: Any) -> Any:
            async with self.lock:
                await producer.buffer.flush()
                return await commit(*args, **kwargs)

        consumer.commit = guarded_commit
