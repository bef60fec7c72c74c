"""A realistic Slack workload for the processor benchmarks: 20 triggers with typical CEL
filters and a mix of event shapes (messages, thread replies, mentions, reactions, bot posts,
joins, channel events, app rate-limit envelopes, a few retries)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.records import RawEvent
from schemas.triggers import Target, TriggerConfig

PROJECT = "p-bench"

FILTERS = [
    'event.text.contains("deploy")',
    'event.channel_id in ["C01", "C02", "C03"] && event.bot_id == null',
    'event.user_id != "U0BOT" && size(event.text) > 3',
    'event.text.matches("(?i)incident|outage|sev[12]")',
    "event.subtype == null && event.thread_id == null",
    'event.thread_id != null && event.channel_id.startsWith("C0")',
    'event.event_type == "app_mention" || event.text.contains("@oncall")',
    'event.team_id == "T01" && event.channel_id != "C09"',
    'event.text.startsWith("!") && event.user_id.startsWith("U")',
    'event.event_time > 1700000000 && event.text.contains("release")',
    'has(event.text) && event.text != "" && event.bot_id == null',
    'event.channel_id in ["C04", "C05"] || event.text.endsWith("?")',
    'event.user_id in ["U01", "U02", "U03", "U04"]',
    'event.text.contains("error") && !event.text.contains("test")',
    'event.event_type == "reaction_added" || event.subtype == null',
    'event.app_id == "A01" && event.event_type != "member_joined_channel"',
    'size(event.text) < 2000 && event.channel_id != "C00"',
    'event.text.contains("ticket") || event.text.contains("jira")',
    'event.ts != null && event.channel_id.endsWith("1")',
    'event.bot_id == null && (event.text.contains("help") || event.text.contains("?"))',
]

WORDS = [
    "deploy",
    "release",
    "incident",
    "error",
    "help",
    "ticket",
    "the",
    "a",
    "we",
    "to",
    "is",
    "on",
    "for",
    "with",
    "ready",
    "now",
    "outage",
    "test",
    "jira",
    "please",
    "check",
    "prod",
    "staging",
    "sev1",
    "review",
    "merge",
    "rollback",
    "@oncall",
]


class Seeded:
    """A small seeded generator (xorshift64): the same workload on every run."""

    def __init__(self, seed: int) -> None:
        self._state = seed or 1

    def random(self) -> float:
        x = self._state
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        self._state = x
        return (x >> 11) / float(1 << 53)

    def randrange(self, stop: int) -> int:
        return int(self.random() * stop)

    def randint(self, low: int, high: int) -> int:
        return low + self.randrange(high - low + 1)

    def choice(self, items: list[str]) -> str:
        return items[self.randrange(len(items))]


def triggers() -> list[TriggerConfig]:
    return [
        TriggerConfig(
            trigger_id=f"bench-{n:02d}-{uuid.uuid4().hex[:8]}",
            project_id=PROJECT,
            definition="slack",
            name=f"bench-{n}",
            status="active",
            target=Target("noop"),
            updated_at=datetime.now(UTC),
            revision=1,
            config={
                "event_types": ["message", "app_mention", "reaction_added", "team_join"],
                "filter": FILTERS[n],
            },
        )
        for n in range(len(FILTERS))
    ]


def _text(rng: Seeded) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25)))


def envelope(rng: Seeded, event_id: str) -> dict[str, Any]:
    channel = f"C{rng.randint(0, 9):02d}"
    user = f"U{rng.randint(0, 9):02d}"
    ts = f"{1_764_000_000 + rng.randint(0, 86_400)}.{rng.randint(0, 999_999):06d}"
    roll = rng.random()
    event: dict[str, Any]
    if roll < 0.45:
        event = {"type": "message", "channel": channel, "user": user, "text": _text(rng), "ts": ts}
    elif roll < 0.65:
        event = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": _text(rng),
            "ts": ts,
            "thread_ts": f"{1_764_000_000 + rng.randint(0, 3600)}.000100",
        }
    elif roll < 0.75:
        event = {"type": "app_mention", "channel": channel, "user": user, "text": _text(rng)}
        event["ts"] = ts
    elif roll < 0.85:
        event = {
            "type": "reaction_added",
            "user": user,
            "reaction": "thumbsup",
            "item": {"type": "message", "channel": channel, "ts": ts},
        }
    elif roll < 0.92:
        event = {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "B01",
            "channel": channel,
            "text": _text(rng),
            "ts": ts,
        }
    elif roll < 0.96:
        event = {"type": "team_join", "user": {"id": user, "name": "new person"}}
    else:
        event = {"type": "channel_created", "channel": {"id": channel, "name": "new"}}
    return {
        "type": "app_rate_limited" if roll > 0.995 else "event_callback",
        "team_id": "T01",
        "api_app_id": "A01",
        "event_id": event_id,
        "event_time": 1_764_000_000 + rng.randint(0, 86_400),
        "event": event,
    }


def raw_events(configs: list[TriggerConfig], count: int, seed: int = 7) -> list[RawEvent]:
    """`count` raw events spread over the triggers; about 2% are Slack retries of earlier ones."""
    rng = Seeded(seed)
    events: list[RawEvent] = []
    for n in range(count):
        config = configs[rng.randrange(len(configs))]
        headers: dict[str, str] = {}
        if events and rng.random() < 0.02:
            earlier = events[rng.randrange(len(events))]
            config = next(c for c in configs if c.trigger_id == earlier.trigger_id)
            body, headers = earlier.body, {"x-slack-retry-num": "1"}
        else:
            body = orjson.dumps(envelope(rng, f"Ev{n:08d}")).decode()
        events.append(
            RawEvent(
                id=uuid.uuid4().hex,
                trigger_id=config.trigger_id,
                project_id=PROJECT,
                definition="slack",
                received_at=datetime.now(UTC),
                content_type="application/json",
                body=body,
                headers=headers,
            )
        )
    return events
