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
    answer = await client.post(
        "/console/sign-in", data={"csrf": csrf_of(form), "api_key": api_key}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/triggers"
    return csrf_of(await client.get("/console/triggers"))


def key_of(headers: dict[str, str]) -> str:
    """The plaintext key in a bearer header from `project_with_key`."""
    return headers["authorization"].removeprefix("Bearer ")
