"""Delivery targets. Each attempt returns an `AttemptResult`; failures are outcomes, not exceptions.

The request body is the routed record's value unchanged (the CloudEvent in structured mode), so
every retry sends the same bytes under the same `webhook-id`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry.trace import Span

from dispatchers.backoff import parse_retry_after
from dispatchers.compiled import DestinationPolicy
from dispatchers.guard import ForbiddenAddress, is_forbidden, literal_address
from dispatchers.http_client import (
    ConnectionFailed,
    HttpClient,
    InvalidTargetURL,
    ResponseFailed,
    prepared,
)
from runtime import standard_webhooks
from runtime.kafka_targets import KafkaTargetPolicy
from runtime.tracing import Tracing
from schemas.records import RoutedEvent
from schemas.redaction import redact_url, redact_urls_in

log = logging.getLogger("triggerline.dispatchers")

AttemptOutcome = Literal["delivered", "retryable", "permanent"]
CLOUDEVENTS_JSON = "application/cloudevents+json"
# Marks a replayed delivery (its value is the replay id), so that a receiver can tell a replay
# from the original; `webhook-id` stays the event id either way. The body's CloudEvent carries
# the same id as its `replayid` extension attribute.
REPLAY_HEADER = "triggerline-replay-id"
DEFAULT_PORTS = {"http": 80, "https": 443}
# The endpoint of every URL that cannot be parsed; no request is ever sent to one.
INVALID_URL_ENDPOINT = "invalid-url"
# Enough of a response body to keep the connection reusable; the rest is not needed.
RESPONSE_READ_LIMIT = 64 * 1024
# Distinct target URLs whose checks and endpoint are remembered; each attempt would otherwise
# parse its URL twice. Far more than one process's destinations deliver to at once.
URL_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: AttemptOutcome
    http_status: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


def endpoint_of(event: RoutedEvent) -> str:
    """What circuit breakers and the per-endpoint cap are keyed by: the topic for kafka; for
    http the scheme, host and port, never the userinfo, so that one host is one endpoint
    whatever credentials its URLs carry, and the key can be logged.
    """
    if event.targetkind != "http":
        return event.targetref
    return _http_endpoint(event.targetref)


@lru_cache(maxsize=URL_CACHE_SIZE)
def _http_endpoint(target_url: str) -> str:
    try:
        parts = urlsplit(target_url)
        host, port = parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return INVALID_URL_ENDPOINT
    if host and ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host or ''}" + ("" if port is None else f":{port}")


def classify_status(status: int, retry_after: str | None) -> AttemptResult:
    """The outcome of an answer. Every failed answer carries its Retry-After: the record waits
    that long before its next attempt, and the whole destination pauses (dispatchers/limits.py)."""
    if 200 <= status < 300:
        return AttemptResult("delivered", status)
    wait_s = parse_retry_after(retry_after)
    if status in (408, 429) or status >= 500:
        return AttemptResult("retryable", status, f"target answered {status}", wait_s)
    if 300 <= status < 400:
        return AttemptResult(
            "permanent", status, f"target answered {status}; redirects are not followed", wait_s
        )
    return AttemptResult("permanent", status, f"target answered {status}", wait_s)


def _failed_request(exc: Exception, timeout_s: float) -> AttemptResult:
    """The attempt's outcome; its error text is shown to humans, so URLs in it are redacted."""
    if isinstance(exc, ConnectionFailed):
        if isinstance(exc.os_error, ForbiddenAddress):
            return AttemptResult("permanent", error=str(exc.os_error))
        return AttemptResult("retryable", error=f"connection failed: {exc.os_error}")
    if isinstance(exc, TimeoutError):
        return AttemptResult("retryable", error=f"timed out after {timeout_s:g} s")
    if isinstance(exc, ResponseFailed):
        return AttemptResult("retryable", error=redact_urls_in(f"{type(exc).__name__}: {exc}"))
    # A header value or URL HTTP cannot carry; sending again cannot help.
    return AttemptResult(
        "permanent", error=redact_urls_in(f"request refused before sending: {exc}")
    )


@lru_cache(maxsize=URL_CACHE_SIZE)
def _url_problems(target_url: str) -> tuple[str | None, str | None]:
    """Why no request may go to this URL: (as a URL at all, as a private address)."""
    try:
        url = urlsplit(target_url)
        _ = url.port  # urlsplit accepts a malformed port; reading it raises
    except ValueError:
        return "http target URL is not a valid URL", None
    if url.scheme not in ("http", "https") or not url.hostname:
        return "http target URL must be http(s)://host/...", None
    literal = literal_address(url.hostname)
    if literal and is_forbidden(literal):
        return None, f"target address {literal} is not public"
    return None, None


class Targets:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        allow_private: bool,
        max_connections: int,
        kafka_topics: KafkaTargetPolicy,
        tracing: Tracing | None = None,
    ):
        self._producer = producer
        # None while tracing is off: then no attempt touches a span or a trace header.
        self._tracing = tracing
        self._kafka_topics = kafka_topics
        self._allow_private = allow_private
        self._max_connections = max_connections
        self._client: HttpClient | None = None

    async def start(self) -> None:
        self._client = HttpClient(
            max_connections=self._max_connections, guard=not self._allow_private
        )

    async def close(self) -> None:
        if self._client:
            await self._client.close()

    async def attempt(
        self, event: RoutedEvent, body: bytes, policy: DestinationPolicy
    ) -> AttemptResult:
        if event.targetkind == "http":
            return await self._http(event, body, policy)
        if event.targetkind == "kafka":
            return await self._kafka(event, body)
        return AttemptResult("delivered")

    async def _http(
        self, event: RoutedEvent, body: bytes, policy: DestinationPolicy
    ) -> AttemptResult:
        if self._client is None:
            raise RuntimeError("Targets.start() was not called")
        refusal = self._refusal(event.targetref, policy)
        if refusal is not None or policy.signing_key is None:
            return AttemptResult("permanent", error=refusal)
        # Signed with the destination's own key: each destination's receiver holds its secret.
        headers = standard_webhooks.sign(policy.signing_key, event.id, int(time.time()), body)
        headers["content-type"] = CLOUDEVENTS_JSON
        if event.replayid is not None:
            headers[REPLAY_HEADER] = event.replayid
        try:
            target = prepared(event.targetref)
        except InvalidTargetURL:
            return AttemptResult("permanent", error="http target URL is not a valid URL")
        except ValueError as exc:
            return _failed_request(exc, policy.timeout_s)
        tracing = self._tracing
        span = None if tracing is None else _http_span(tracing, event.targetref, headers)
        try:
            answer = await self._client.post(
                target,
                list(headers.items()),
                body,
                timeout_s=policy.timeout_s,
                body_limit=RESPONSE_READ_LIMIT,
            )
            if span is not None:
                _answered(span, answer.status)
            return classify_status(answer.status, answer.retry_after)
        except (ConnectionFailed, ResponseFailed, TimeoutError, ValueError) as exc:
            failed = _failed_request(exc, policy.timeout_s)
            if span is not None:
                Tracing.failed(span, _error_type(exc), failed.error)
            return failed
        finally:
            if span is not None:
                span.end()

    def _refusal(self, target_url: str, policy: DestinationPolicy) -> str | None:
        """Why a request to this URL must not be sent at all, if it must not."""
        malformed, private = _url_problems(target_url)
        if malformed is not None:
            return malformed
        if policy.signing_key is None:
            return f"destination {policy.name} has no signing secret for its http target"
        return None if self._allow_private else private

    async def _kafka(self, event: RoutedEvent, body: bytes) -> AttemptResult:
        if not event.targetref:
            return AttemptResult("permanent", error="kafka target has no topic")
        # Checked at save time too; a trigger saved before a rule or the pattern changed is
        # held to the rules of now.
        refusal = self._kafka_topics.refusal(event.targetref)
        if refusal is not None:
            return AttemptResult("permanent", error=refusal)
        headers = kafka_headers(event)
        span = None
        if self._tracing is not None:
            # The target topic's record carries the context of this attempt's `send` span.
            span = self._tracing.start_send(event.targetref, key=event.subject)
            headers += self._tracing.record_headers(span)
        try:
            await self._producer.send_and_wait(
                event.targetref, body, key=event.subject.encode(), headers=headers
            )
        except (KafkaError, TimeoutError) as exc:
            error = (
                "kafka: produce timed out"
                if isinstance(exc, TimeoutError)
                else f"kafka: {type(exc).__name__}: {exc}"
            )
            if span is not None:
                Tracing.failed(span, type(exc).__name__, error)
            return AttemptResult("retryable", error=error)
        finally:
            if span is not None:
                span.end()
        return AttemptResult("delivered")


def span_url(target_url: str) -> str:
    """The target URL as an attempt's span shows it (`url.full`): no userinfo, query or
    fragment, and path segments that look like tokens redacted (schemas/redaction.py)."""
    parts = urlsplit(target_url)
    netloc = parts.netloc.rpartition("@")[2]
    return redact_url(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def _http_span(tracing: Tracing, target_url: str, headers: dict[str, str]) -> Span:
    """An attempt's client span, the current span's child; the request carries its context as
    `traceparent` (and `tracestate`). The URL was checked (`Targets._refusal`) before."""
    parts = urlsplit(target_url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    span = tracing.start_http_attempt("POST", span_url(target_url), parts.hostname or "", port)
    headers.update(tracing.context_fields(span))
    return span


def _answered(span: Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        Tracing.failed(span, str(status))


def _error_type(exc: Exception) -> str:
    """The exception's fully qualified class name, as the HTTP conventions' `error.type`."""
    kind = type(exc)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def kafka_headers(event: RoutedEvent) -> list[tuple[str, bytes]]:
    headers = [("content-type", CLOUDEVENTS_JSON.encode())]
    if event.replayid is not None:
        headers.append((REPLAY_HEADER, event.replayid.encode()))
    return headers
