"""Which topics a kafka target may write to.

A target topic under the deployment's own prefix would let a tenant write the pipeline's
internal topics (overwrite another trigger's compacted config, loop routed events), and `__`
topics are Kafka's own. Both are refused always; an operator may restrict targets further with
an allow-list pattern. The API checks this at save time and the dispatchers again before each
produce, so a trigger saved before the rule (or the pattern) changed cannot write either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.settings import Settings


@dataclass(frozen=True, slots=True)
class KafkaTargetPolicy:
    topic_prefix: str
    # Full-match allow-list; None allows every topic the fixed rules allow.
    allowed: re.Pattern[str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaTargetPolicy:
        pattern = settings.registry.kafka_target_topic_pattern
        return cls(settings.topics.prefix, None if pattern is None else re.compile(pattern))

    def refusal(self, topic: str) -> str | None:
        """Why a kafka target may not write `topic`, or None if it may."""
        if topic.startswith(f"{self.topic_prefix}."):
            return (
                f"kafka targets may not write topics under the deployment's prefix"
                f" {self.topic_prefix!r}: those are Triggerline's own"
            )
        if topic.startswith("__"):
            return "kafka targets may not write Kafka's internal topics (names starting with __)"
        if self.allowed is not None and not self.allowed.fullmatch(topic):
            return (
                "kafka target topic does not match the allowed pattern"
                f" (TRIGGERLINE_KAFKA_TARGET_TOPIC_PATTERN) {self.allowed.pattern!r}"
            )
        return None
