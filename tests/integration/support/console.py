"""Driving the web console over httpx: sign in with a project's key, read a page's CSRF token."""

from __future__ import annotations

import re

import httpx

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
