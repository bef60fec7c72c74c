"""The console's ops glance and `triggerline status` show the same numbers, read from real
Kafka, a real dispatcher process's metrics and the in-process ingest's cron election."""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
import pytest

from runtime.kafka import durable_producer
from runtime.settings import Settings
from schemas.records import DeadLetter
from schemas.topics import DEAD_LETTERS, RAW_EVENTS
from tests.integration.support.cli import triggerline
from tests.integration.support.console import (
    assert_console_headers,
    assert_no_inline_code,
    key_of,
    sign_in,
)
from tests.integration.support.control_plane import (
    WHSEC,
    control_plane,
    project_with_key,
    webhook_trigger,
)
from tests.integration.support.polling import eventually
from tests.integration.support.stages import running_stages, wait_until_ready, with_free_ports
from tests.support.signing import standard_webhook_headers

pytestmark = pytest.mark.integration


def cell(page: str, stage: str) -> tuple[int, int]:
    """(lag, members) of a stage's row on the ops page."""
    found = re.search(
        rf'<tr id="lag-{stage}">.*?class="lag">(\d+)</td>\s*<td data-label="Members">(\d+)<',
        page,
        re.DOTALL,
    )
    assert found is not None, stage
    return int(found.group(1)), int(found.group(2))


async def test_the_ops_page_and_the_status_command_agree(settings: Settings) -> None:
    settings = with_free_ports(settings)
    _, acme = await project_with_key(settings, "acme")
    producer = durable_producer(settings)
    await producer.start()
    try:
        letter = DeadLetter.of(
            "processor",
            "undecodable",
            "bad bytes",
            source=(RAW_EVENTS.name(settings.topics.prefix), 0, 1),
            key=None,
            value=b"\xff",
            event_id=None,
            trigger_id=None,
        )
        await producer.send_and_wait(
            DEAD_LETTERS.name(settings.topics.prefix), DEAD_LETTERS.encode(letter)
        )
    finally:
        await producer.stop()
    with running_stages(settings, "dispatchers"):
        await wait_until_ready(f"http://127.0.0.1:{settings.dispatcher.metrics_port}/readyz")
        async with control_plane(settings) as client:
            created = await client.post("/triggers", json=webhook_trigger("orders"), headers=acme)
            assert created.status_code == 201, created.text
            for seq in range(2):
                body = orjson.dumps({"seq": seq})
                headers = standard_webhook_headers(body, WHSEC, msg_id=f"msg_{uuid.uuid4().hex}")

                async def accepted(body: bytes = body, headers: dict[str, str] = headers) -> Any:
                    answer = await client.post(
                        f"/webhooks/{created.json()['id']}", content=body, headers=headers
                    )
                    return None if answer.status_code == 404 else answer

                assert (await eventually(accepted)).status_code == 200
            await sign_in(client, key_of(acme))
            leader_client = f"{settings.group('cron')}-consumer"

            async def elected() -> str | None:
                page = await client.get("/console/ops")
                assert page.status_code == 200, page.text
                assert_console_headers(page)
                assert_no_inline_code(page)
                return page.text if f'id="cron-leader">{leader_client}<' in page.text else None

            page = await eventually(elected, timeout_s=60)
            # No processor runs: the two raw events wait; the running dispatcher has none.
            assert cell(page, "processors") == (2, 0)
            assert cell(page, "dispatchers") == (0, 1)
            assert cell(page, "delivery-log-sink") == (0, 0)
            assert 'id="dlq-size">1<' in page
            assert 'id="relay-backlog">0<' in page
            assert "<li>processors: 2 records wait and no member reads them</li>" in page
            assert page.count('<td data-label="Difference" class="drift">none</td>') == 8
            assert 'id="open-circuits">0<' in page
            assert f"127.0.0.1:{settings.dispatcher.metrics_port}/metrics" in page

            printed = await triggerline(settings, "status")
            assert printed.code == 0, printed.stderr
            assert re.search(r"processors\s+lag\s+2\s+members 0", printed.stdout)
            assert re.search(r"dispatchers\s+lag\s+0\s+members 1", printed.stdout)
            assert "dead letters: 1" in printed.stdout
            assert "open circuits: 0 (open 0, half_open 0, closed 0;" in printed.stdout
            assert f"cron leader: {leader_client} on " in printed.stdout

            as_json = await triggerline(settings, "status", "--json")
            assert as_json.code == 0, as_json.stderr
            status = orjson.loads(as_json.stdout)
            kafka = status["kafka"]
            assert {g["name"]: (g["lag"], len(g["members"])) for g in kafka["groups"]} == {
                group: cell(page, group)
                for group in ("processors", "dispatchers", "delivery-log-sink", "cron")
            }
            assert (kafka["dead_letters"], status["circuits"]["open"]) == (1, 0)
            assert kafka["cron_leader"]["client_id"] == leader_client
