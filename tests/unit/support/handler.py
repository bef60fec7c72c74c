"""In-memory seams for unit tests of the processors' handler: a trigger lookup over compiled
triggers, raw records, trigger configs, and an output that enforces the record bound as the
producer does."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka.errors import MessageSizeTooLargeError

from kinds import KINDS
from kinds.routing import RoutingTrigger, compile_routing_trigger
from processors.handler import RawEventHandler
from processors.outputs import Output
from processors.record_bound import record_size
from processors.spans import ProcessorSpans
from schemas.records import DeadLetter, RawEvent
from schemas.topics import DEAD_LETTERS, DELIVERY_LOG, MAX_RECORD_BYTES, RAW_EVENTS
from schemas.triggers import DefinitionSlug, Target, TriggerConfig

PREFIX = "unit"
PROJECT = "p-unit"


class CompiledTriggers:
    """The trigger-config view's lookup seam, over triggers compiled once."""

    def __init__(self, *compiled: RoutingTrigger) -> None:
        self._compiled = {trigger.trigger_id: trigger for trigger in compiled}
        self.unusable_reasons: dict[str, str] = {}

    def get(self, trigger_id: str) -> RoutingTrigger | None:
        return self._compiled.get(trigger_id)

    async def lookup(self, trigger_id: str) -> RoutingTrigger | None:
        return self._compiled.get(trigger_id)

    def unusable(self, trigger_id: str) -> str | None:
        return self.unusable_reasons.get(trigger_id)


@dataclass(frozen=True)
class RawRecord:
    value: bytes | None
    key: bytes | None = b"t1"
    topic: str = f"{PREFIX}.raw-events"
    partition: int = 0
    offset: int = 0
    timestamp: int = 1_764_000_000_000
    headers: tuple[tuple[str, bytes | None], ...] = ()


class BoundedOutput:
    """Takes records as the producer would: one above the record bound raises aiokafka's
    MessageSizeTooLargeError (the producer's check, with its size estimate)."""

    def __init__(self) -> None:
        self.records: list[Output] = []

    def produce(self, outputs: list[Output]) -> None:
        for output in outputs:
            if record_size(output) > MAX_RECORD_BYTES:
                raise MessageSizeTooLargeError(f"{record_size(output)} bytes")
        self.records.extend(outputs)

    def topics(self) -> list[str]:
        return [record.topic.removeprefix(f"{PREFIX}.") for record in self.records]

    def dead_letters(self) -> list[DeadLetter]:
        return [
            DEAD_LETTERS.decode(r.value) for r in self.records if r.topic.endswith("dead-letters")
        ]

    def outcomes(self) -> list[tuple[str, str | None]]:
        entries = (
            DELIVERY_LOG.decode(r.value) for r in self.records if r.topic.endswith("delivery-log")
        )
        return [(entry.outcome, entry.reason) for entry in entries]


def raw_record(
    trigger_id: str,
    definition: DefinitionSlug,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    replay: bool = False,
) -> RawRecord:
    event = raw_event(trigger_id, definition, body, headers, replay=replay)
    return RawRecord(RAW_EVENTS.encode(event), trigger_id.encode())


def raw_event(
    trigger_id: str,
    definition: DefinitionSlug,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    replay: bool = False,
) -> RawEvent:
    return RawEvent(
        id=uuid.uuid4().hex,
        trigger_id=trigger_id,
        project_id=PROJECT,
        definition=definition,
        received_at=datetime.now(UTC),
        content_type="application/json",
        body=orjson.dumps(body).decode(),
        headers=headers or {},
        replay=replay,
    )


def b64_size(text: str | None) -> int:
    return len(base64.b64decode(text)) if text else 0


def trigger_config(trigger_id: str, definition: DefinitionSlug, **config: object) -> TriggerConfig:
    return TriggerConfig(
        trigger_id=trigger_id,
        project_id=PROJECT,
        definition=definition,
        name=trigger_id,
        status="active",
        target=Target("noop"),
        updated_at=datetime.now(UTC),
        revision=1,
        config=KINDS[definition].validate_config(config),
    )


def handler(*configs: TriggerConfig, spans: ProcessorSpans | None = None) -> RawEventHandler:
    view = CompiledTriggers(
        *(compile_routing_trigger(c, "cel-expr-python", max_collection_items=1000) for c in configs)
    )
    return RawEventHandler(view, PREFIX, max_correlation_id_bytes=256, spans=spans)


def slack_envelope(text: str, **event: str) -> dict[str, object]:
    return {
        "type": "event_callback",
        "event_id": "Ev1",
        "event": {"type": "message", "channel": "C1", "text": text, "ts": "1.1", **event},
    }
