"""What a trigger kind is: the contract every kind module fulfils, and the records it yields.

A kind holds everything about one source of events, for every stage: its config model and
secrets (the registry), how a request is verified and its envelope parsed (ingest), and how an
event is normalized and correlated (the processors). Kinds do no I/O: they work on bytes,
headers, records and a given time, so each one is tested on its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import parse_qs

import msgspec
import orjson

from kinds.config import ConfigModel
from schemas.records import RawEvent
from schemas.triggers import DefinitionSlug

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain; charset=utf-8"
# Suffix of the secret that stays valid while a sender switches to a rotated one.
PREVIOUS = "_PREVIOUS"


class EnvelopeRejected(Exception):
    """A verified request whose envelope cannot be an event; the message is for the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UnroutableEvent(ValueError):
    """The raw record is well-formed but its body cannot be routed; it is dead-lettered."""


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A webhook request as a kind sees it: the body exactly as received."""

    headers: Mapping[str, str]
    body: bytes
    # The media type, lower case, without parameters.
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A request that carries an event, with the sender's id for it if it sent one."""

    event_id: str | None
    # Where the id came from, so that an answer about it names what the sender controls.
    event_id_source: str


@dataclass(frozen=True, slots=True)
class Handshake:
    """A request the sender makes to check the endpoint (Slack's url_verification): answered
    at once, never stored."""

    body: bytes
    media_type: str


class Normalized(msgspec.Struct, frozen=True):
    """One event in Triggerline's terms, whatever the sender."""

    # The sender's id for the event (Slack event_id, webhook-id, tick id): retries share it.
    event_id: str
    event_type: str
    correlation_id: str
    time: datetime
    # What filters see as `event`: JSON-typed fields.
    fields: dict[str, Any]
    # The routed CloudEvent's data.
    data: dict[str, Any]
    # Something an operator should know about how this event was normalized (logged).
    note: str | None = None


class Ignored(msgspec.Struct, frozen=True):
    """Not an event at all for routing purposes (paused trigger, handshake, non-event
    envelope); recorded with its reason."""

    event_id: str
    reason: str


class Expression(Protocol):
    """A trigger's compiled CEL expression, as a kind evaluates it."""

    def evaluate(self, event: dict[str, Any]) -> Any: ...


class TriggerKind(ABC):
    slug: ClassVar[DefinitionSlug]
    title: ClassVar[str]
    description: ClassVar[str]
    arrives_by: ClassVar[Literal["webhook", "schedule"]]
    config_model: ClassVar[type[ConfigModel]]
    # Secrets an instance must have, from the trigger or its environment.
    required_secrets: ClassVar[tuple[str, ...]] = ()
    # The signature scheme, as `/definitions` names it.
    verification: ClassVar[str | None] = None

    def config_schema(self) -> dict[str, Any]:
        return self.config_model.model_json_schema()

    def validate_config(self, raw: Any) -> dict[str, Any]:
        """The config as stored and published; raises pydantic's ValidationError."""
        return self.config_model.model_validate(raw).model_dump(mode="json", exclude_none=True)

    def secret_problem(self, name: str, value: str) -> str | None:
        """Why a secret value this kind reads can never work, or None."""
        return None

    @abstractmethod
    def normalize(self, raw: RawEvent, correlation: Expression | None) -> Normalized | Ignored:
        """The event in Triggerline's terms; `UnroutableEvent` if the body cannot be one.

        `correlation` is the trigger's compiled `correlation` expression, for kinds that let
        a trigger choose it."""


class WebhookKind(TriggerKind):
    """A kind whose events arrive as signed HTTP requests."""

    arrives_by = "webhook"
    # Headers the raw record keeps because normalizing needs them (lower case).
    kept_headers: ClassVar[tuple[str, ...]] = ()

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        """The secrets a request may be signed with, the rotated-out ones included."""
        return tuple(
            name for secret in self.required_secrets for name in (secret, secret + PREVIOUS)
        )

    @abstractmethod
    def verify(self, request: WebhookRequest, secrets: Iterable[str], now: float) -> None:
        """Return if the request is signed with one of `secrets`; raise SignatureRejected."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> Envelope | Handshake:
        """What a verified request carries; `EnvelopeRejected` if it is no event."""


def content_types(content_type: str, *allowed: str) -> None:
    if content_type not in allowed:
        raise EnvelopeRejected(415, f"unsupported content type; send {' or '.join(allowed)}")


def envelope_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeRejected(400, f"malformed JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise EnvelopeRejected(400, "expected a JSON object")
    return parsed


def form_payload(body: bytes) -> bytes:
    """The JSON in the `payload` field of a form-encoded body (Slack interactivity, GitHub)."""
    payload = parse_qs(body.decode()).get("payload")
    if not payload:
        raise EnvelopeRejected(400, "form body has no `payload` field")
    return payload[0].encode()


def raw_object(raw: RawEvent) -> dict[str, Any]:
    """A stored body as a JSON object, whichever of JSON or form encoding it came in."""
    text = parse_qs(raw.body).get("payload", ["{}"])[0] if raw.content_type == FORM else raw.body
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UnroutableEvent(f"body is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise UnroutableEvent("body is not a JSON object")
    return parsed


def text_of(value: Any) -> str | None:
    return value if isinstance(value, str) else None
