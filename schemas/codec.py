"""Versioned records on the wire: frozen msgspec Structs, as JSON.

Every record type carries a `v` field whose default is its schema version. A record that cannot be
decoded raises `RecordDecodeError`, which names the topic, partition and offset it came from, so
that consumers can dead-letter it and move on instead of crashing.

msgspec builds, encodes, decodes and validates records in C: on the processors' per-event path a
frozen dataclass cost several microseconds to construct and as many to encode, a Struct a fraction
of one. The slower reading of a record that fails to decode is only there to name the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import msgspec
import orjson


class Versioned(Protocol):
    @property
    def v(self) -> int: ...


R = TypeVar("R", bound=Versioned)


@dataclass(frozen=True, slots=True)
class RecordPosition:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class RecordDecodeError(ValueError):
    def __init__(self, record_type: str, position: RecordPosition | None, problem: str) -> None:
        where = f" at {position}" if position else ""
        super().__init__(f"cannot decode {record_type}{where}: {problem}")
        self.position = position
        self.problem = problem


def _schema_version(record_type: type[Any]) -> int:
    for field in msgspec.structs.fields(record_type):
        if field.name == "v" and isinstance(field.default, int):
            return field.default
    raise TypeError(f"{record_type.__name__} needs a `v: int = <schema version>` field")


class RecordCodec(Generic[R]):
    """Encodes and decodes one record type. Build one per type at import time and reuse it."""

    def __init__(self, record_type: type[R]) -> None:
        self._name = record_type.__name__
        self._decoder = msgspec.json.Decoder(record_type)
        self._encoder = msgspec.json.Encoder()
        self.version = _schema_version(record_type)

    def encode(self, record: R) -> bytes:
        return self._encoder.encode(record)

    def decode(self, raw: bytes | None, position: RecordPosition | None = None) -> R:
        if raw is None:
            raise RecordDecodeError(self._name, position, "the record has no value")
        try:
            record = self._decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise RecordDecodeError(self._name, position, self._problem(raw, exc)) from None
        version = record.v
        if version != self.version:
            raise RecordDecodeError(self._name, position, self._version_problem(version))
        return record

    def _problem(self, raw: bytes, exc: msgspec.DecodeError) -> str:
        """What is wrong with a record the typed decoder refused, in the most useful terms."""
        try:
            payload: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            return f"not JSON ({error})"
        if not isinstance(payload, dict):
            return "expected a JSON object"
        if payload.get("v") != self.version:
            return self._version_problem(payload.get("v"))
        return str(exc)

    def _version_problem(self, version: object) -> str:
        return f"schema version {version!r}; this build reads version {self.version}"
