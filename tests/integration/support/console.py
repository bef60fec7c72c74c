"""Driving the web console over httpx: sign in with a project's key, read a page's CSRF token."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

# Delivery-log rows made by `log_row` are this long before now.
NOW = datetime.now(UTC)
# Markup a sender or a user might type, which every page must show as text.
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token a console page's forms carry."""
    found = _CSRF.search(page.text)
    assert found is not None, f"no CSRF field on {page.url}"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, api_key: str) -> str:
    """Sign `client` in (its cookie jar keeps the session); the session's CSRF token."""
    form = await client.get("/console/sign-in")
    answer = await client.post("/console/sign-in", data={"csrf": csrf_of(form), "api_key": api_key})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/triggers"
    return csrf_of(await client.get("/console/triggers"))


def key_of(headers: dict[str, str]) -> str:
    """The plaintext key in a bearer header from `project_with_key`."""
    return headers["authorization"].removeprefix("Bearer ")


_INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
_SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def assert_console_headers(response: httpx.Response) -> None:
    """The headers every console response carries."""
    policy = response.headers.get("content-security-policy", "")
    for directive in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert directive in policy, (response.url, policy)
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


def assert_no_inline_code(page: httpx.Response) -> None:
    """No inline script, event-handler attribute or inline style: the CSP would block them, and
    their absence is what lets it."""
    html = page.text
    assert _INLINE_HANDLER.search(html) is None, "an on* attribute"
    assert " style=" not in html
    assert "<style" not in html
    for attributes in _SCRIPT_TAG.findall(html):
        assert 'src="/console/static/' in attributes, attributes


def log_row(
    offset: int, event_id: str, owner: tuple[str, str], outcome: str, ago: timedelta, **fields: Any
) -> tuple[Any, ...]:
    """A delivery-log row as the sink writes it; `owner` is (trigger id, project id)."""
    trigger_id, project_id = owner
    stage = "processor" if outcome in ("routed", "skipped", "filter_error") else "dispatcher"
    return (
        0,
        offset,
        event_id,
        trigger_id,
        project_id,
        stage,
        outcome,
        NOW - ago,
        None,
        "noop",
        None,
        fields.get("attempt", 0),
        fields.get("reason"),
        fields.get("http_status"),
        fields.get("error"),
        fields.get("latency_ms"),
        False,
        None,
        fields.get("destination"),
        None,
    )


async def create(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    response = await client.post("/triggers", json=body, headers=headers)
    assert response.status_code == 201, response.text
    trigger_id: str = response.json()["id"]
    return trigger_id


def text_of(markup: str) -> str:
    """What a reader sees of some markup: its text, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def cells(page: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells in the table `table_id`."""
    table = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)
    return [
        [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
        for row in rows
    ]
