"""The record bound every processor output must fit, checked before anything is sent.

A record above the producer's `max_request_size` (the topics' 4 MiB `max.message.bytes`) fails
its send with `MessageSizeTooLargeError`, which aborts the whole transaction; the same event
would then be read and fail again, forever. So the handler measures each output as the
producer will, and dead-letters the event instead. Dead letters carry the raw record, which
may itself be near the bound, so their copied parts are cut to fit.
"""

from __future__ import annotations

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from processors.outputs import Output
from schemas.topics import MAX_RECORD_BYTES

# A dead letter's copy of the raw value is cut to this many bytes: with base64's 4/3 and the
# letter's other fields it still fits the record bound.
DEAD_LETTER_VALUE_BYTES = (MAX_RECORD_BYTES - 256 * 1024) * 3 // 4
# Error texts and delivery-log reasons are read by people; past this they only cost space.
MAX_TEXT_CHARS = 2048


def record_size(output: Output) -> int:
    """The size the producer compares with `max_request_size` (an upper bound)."""
    headers: list[tuple[str, bytes | None]] = list(output.headers)
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(output.key, output.value, headers)
    return size


def oversized(outputs: list[Output]) -> str | None:
    """Why one of `outputs` cannot be produced, or None when every one fits."""
    for output in outputs:
        size = record_size(output)
        if size > MAX_RECORD_BYTES:
            topic = output.topic.rpartition(".")[2]
            return (
                f"the {topic} record would be {size} bytes, over the {MAX_RECORD_BYTES}-byte "
                f"record bound (key {len(output.key)} bytes)"
            )
    return None


def cut(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
