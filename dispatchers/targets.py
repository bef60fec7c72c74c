"""Delivery targets. Each returns an `AttemptResult`; failures are outcomes, not exceptions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from schemas.records import RoutedEvent

log = logging.getLogger("triggerline.dispatchers")

AttemptOutcome = Literal["delivered", "retryable", "permanent"]


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: AttemptOutcome
    http_status: int | None = None
    error: str | None = None


async def deliver_noop(event: RoutedEvent) -> AttemptResult:
    log.info("delivered to noop target", extra={"type": event.type})
    return AttemptResult("delivered")


async def deliver(event: RoutedEvent) -> AttemptResult:
    if event.targetkind == "noop":
        return await deliver_noop(event)
    return AttemptResult(
        "permanent", error=f"target kind {event.targetkind!r} is not supported by this dispatcher"
    )
