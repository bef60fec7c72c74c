"""A destination's rate limit on real Kafka, with a real dispatcher process and http receiver:
the limited destination is paced, the unlimited one beside it (same events, same correlation
ids, same partitions) is not held back, and each keeps per-conversation order."""

from __future__ import annotations

from collections import defaultdict

import httpx
import msgspec
import pytest

from runtime.settings import Settings
from schemas.records import DeliveryLogRecord
from schemas.triggers import RateLimit, Target
from tests.integration.support.dispatch_harness import (
    DestinationSpec,
    Received,
    journeys,
    produce_routed,
    publish_trigger,
    requests_reach,
    routed_event,
    start_dispatcher,
    stop_dispatcher,
    target_server,
)
from tests.integration.support.polling import eventually
from tests.integration.support.stages import free_port

pytestmark = pytest.mark.integration

EVENTS = 200
CONVERSATIONS = 20
RATE_PER_S = 20.0


def first_receipts(received: list[Received]) -> dict[str, list[int]]:
    """Per correlation id, the sequence numbers in the order the receiver first saw each."""
    seen: set[str] = set()
    order: dict[str, list[int]] = defaultdict(list)
    for r in received:
        if r.webhook_id not in seen:
            seen.add(r.webhook_id)
            order[r.subject].append(r.seq)
    return order


async def limit_wait_seconds(port: int) -> float | None:
    async with httpx.AsyncClient() as client:
        try:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)).text
        except httpx.HTTPError:
            return None
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name == "triggerline_dispatcher_limit_wait_seconds_total":
            labels, _, value = rest.partition("} ")
            if set(labels.split(",")) == {'target_kind="http"', 'limit="rate"'}:
                return float(value)
    return None


async def test_a_rate_limited_destination_is_paced_and_holds_back_no_other(
    settings: Settings,
) -> None:
    async with target_server() as server:
        slow_url, fast_url = server.url("/rate-slow"), server.url("/rate-fast")
        trigger = await publish_trigger(
            settings,
            destinations=[
                DestinationSpec(
                    "slow",
                    Target("http", slow_url),
                    rate_limit=RateLimit(per_second=RATE_PER_S, burst=1),
                ),
                DestinationSpec("fast", Target("http", fast_url)),
            ],
        )
        # As the processors write them: per event, one record per destination, same event id,
        # keyed by its correlation id; each conversation's events in sequence order.
        records = []
        for n in range(EVENTS):
            slow = routed_event(trigger, f"conv-{n % CONVERSATIONS}", n, slow_url, "slow")
            fast = msgspec.structs.replace(slow, destination="fast", targetref=fast_url)
            records += [slow, fast]
        await produce_routed(settings, records)
        port = free_port()
        process = start_dispatcher(settings, TRIGGERLINE_DISPATCHER_METRICS_PORT=str(port))
        try:
            await requests_reach(server, EVENTS, "/rate-slow")
            waited = await limit_wait_seconds(port)
        finally:
            assert stop_dispatcher(process) == 0

    assert server.bad_signatures == 0
    slow_calls, fast_calls = server.calls("/rate-slow"), server.calls("/rate-fast")
    assert len(slow_calls) == len(fast_calls) == EVENTS, "each delivered once"
    start = min(slow_calls[0].at, fast_calls[0].at)
    slow_span = slow_calls[-1].at - slow_calls[0].at
    slow_third = slow_calls[EVENTS // 3].at - start
    fast_done = fast_calls[-1].at - start
    print(
        f"\nrate limit {RATE_PER_S:g}/s, {EVENTS} events over {CONVERSATIONS} correlation ids:"
        f" slow first to last delivery {slow_span:.2f} s;"
        f" slow one third done at {slow_third:.2f} s;"
        f" fast last delivery at {fast_done:.3f} s;"
        f" seconds waited for the rate (metric) {waited}"
    )
    # 200 deliveries at 20/s from a bucket of one: 199 intervals of 50 ms.
    assert 8.0 <= slow_span <= 14.0
    assert fast_done < slow_third, "the unlimited destination waited for the limited one"
    expected = {f"conv-{c}": list(range(c, EVENTS, CONVERSATIONS)) for c in range(CONVERSATIONS)}
    assert first_receipts(slow_calls) == expected
    assert first_receipts(fast_calls) == expected
    assert waited is not None
    assert waited > 0

    # The delivery log names each step's destination: every event delivered once to each.
    async def logged() -> list[DeliveryLogRecord] | None:
        steps = [s for j in (await journeys(settings)).values() for s in j]
        delivered = [s for s in steps if s.stage == "dispatcher" and s.outcome == "delivered"]
        return delivered if len(delivered) >= 2 * EVENTS else None

    delivered = await eventually(logged, 30)
    by_destination: dict[str | None, set[str]] = defaultdict(set)
    for step in delivered:
        by_destination[step.destination].add(step.event_id)
    assert {d: len(ids) for d, ids in by_destination.items()} == {"slow": EVENTS, "fast": EVENTS}
    assert all(step.attempt == 1 for step in delivered), "waiting for a token spends no attempt"
