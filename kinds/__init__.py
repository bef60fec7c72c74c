"""Trigger kinds: one module per source of events, found through `KINDS`.

Stages look a kind up by a trigger's `definition` and never branch on the slug themselves, so
a new source is one module here plus its tests.
"""

from __future__ import annotations

from collections.abc import Mapping

from kinds import cron, github, slack, stripe, webhook
from kinds.base import TriggerKind, WebhookKind

KINDS: Mapping[str, TriggerKind] = {
    kind.slug: kind for kind in (slack.KIND, webhook.KIND, cron.KIND, github.KIND, stripe.KIND)
}


def webhook_kind(slug: str) -> WebhookKind | None:
    """The kind, if its events arrive as webhooks."""
    kind = KINDS.get(slug)
    return kind if isinstance(kind, WebhookKind) else None


def secret_problem(name: str, value: str) -> str | None:
    """Why a secret value can never work for the kind that reads a secret of this name."""
    for kind in KINDS.values():
        problem = kind.secret_problem(name, value)
        if problem is not None:
            return problem
    return None


__all__ = ["KINDS", "TriggerKind", "WebhookKind", "secret_problem", "webhook_kind"]
