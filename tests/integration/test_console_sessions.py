"""Console sign-in, sessions and request safety on the real ingest app: cookie flags, CSRF,
security headers, revocation and expiry."""

from __future__ import annotations

import time

import httpx
import pytest
from psycopg import AsyncConnection

from ingest.console.session import COOKIE_NAME, SessionCodec, new_session
from ingest.registry.api_keys import list_api_keys, revoke_api_key
from runtime.settings import Settings
from tests.integration.support.console import (
    assert_console_headers,
    assert_no_inline_code,
    csrf_of,
    key_of,
    sign_in,
)
from tests.integration.support.control_plane import control_plane, project_with_key, webhook_trigger

pytestmark = pytest.mark.integration


def cookie_attributes(response: httpx.Response, name: str) -> dict[str, str]:
    """The attributes of the Set-Cookie header for `name`, keys lowercased."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            parts = [part.strip() for part in header.split(";")]
            return {
                key.lower(): value for key, _, value in (part.partition("=") for part in parts[1:])
            }
    raise AssertionError(f"no {name} cookie set")


async def test_sign_in_refuses_bad_keys_and_sets_a_strict_cookie(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        anonymous = await client.get("/console/triggers")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/console/sign-in"

        form = await client.get("/console/sign-in")
        assert form.status_code == 200
        assert_console_headers(form)
        assert_no_inline_code(form)
        assert form.headers["cache-control"] == "no-store"
        assert '<label for="api_key">' in form.text

        for bad in ("tl_not-a-key", key_of(acme)[:-1], "x" * 5000):
            refused = await client.post(
                "/console/sign-in", data={"csrf": csrf_of(form), "api_key": bad}
            )
            assert refused.status_code == 401, bad[:20]
            assert "not a live API key" in refused.text
            assert COOKIE_NAME + "=" not in refused.headers.get("set-cookie", "")
            form = refused
        empty = await client.post("/console/sign-in", data={"csrf": csrf_of(form), "api_key": ""})
        assert empty.status_code == 422
        assert "enter a project API key" in empty.text

        # Without the sign-in page's token (a cross-site form posting a key): refused.
        client.cookies.clear()
        forged = await client.post("/console/sign-in", data={"api_key": key_of(acme)})
        assert forged.status_code == 403
        assert COOKIE_NAME + "=" not in forged.headers.get("set-cookie", "")

        form = await client.get("/console/sign-in")
        signed = await client.post(
            "/console/sign-in", data={"csrf": csrf_of(form), "api_key": key_of(acme)}
        )
        assert signed.status_code == 303
        cookie = cookie_attributes(signed, COOKIE_NAME)
        assert "httponly" in cookie
        assert cookie["samesite"].lower() == "strict"
        assert cookie["path"] == "/console"
        assert "secure" not in cookie  # plain http here; see the https test below
        assert int(cookie["max-age"]) == int(settings.console.session_ttl_s)
        page = await client.get("/console/triggers")
        assert page.status_code == 200
        assert "Sign out" in page.text


async def test_the_cookie_is_secure_over_https(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        # The same app, addressed over https (as behind a proxy that passes the scheme on).
        form = await client.get("https://ingest/console/sign-in")
        assert "secure" in cookie_attributes(form, "tl_console_pre")
        signed = await client.post(
            "https://ingest/console/sign-in",
            data={"csrf": csrf_of(form), "api_key": key_of(acme)},
        )
        assert signed.status_code == 303
        assert "secure" in cookie_attributes(signed, COOKIE_NAME)
        assert (await client.get("https://ingest/console/triggers")).status_code == 200


async def test_state_changes_need_the_session_csrf_token(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        created = await client.post("/triggers", json=webhook_trigger("orders"), headers=acme)
        trigger_id = created.json()["id"]
        csrf = await sign_in(client, key_of(acme))
        pause = f"/console/triggers/{trigger_id}/pause"
        for data in ({}, {"csrf": ""}, {"csrf": csrf[:-1]}, {"csrf": csrf + "x"}):
            refused = await client.post(pause, data=data)
            assert refused.status_code == 403, data
            assert "CSRF token is missing or wrong" in refused.text
            assert_console_headers(refused)
        # A JSON body or a multipart form is not a console form at all.
        odd = await client.post(pause, json={"csrf": csrf})
        assert odd.status_code == 415
        status = await client.get(f"/triggers/{trigger_id}", headers=acme)
        assert status.json()["status"] == "active"

        check = await client.post(
            "/console/cel-check", json={"expression": "true", "kind": "filter"}
        )
        assert check.status_code == 403
        assert "CSRF" in check.json()["error"]

        signed_out = await client.post("/console/sign-out", data={"csrf": "wrong"})
        assert signed_out.status_code == 403
        assert (await client.get("/console/triggers")).status_code == 200

        copied = client.cookies[COOKIE_NAME]
        out = await client.post("/console/sign-out", data={"csrf": csrf})
        assert out.status_code == 303
        assert out.headers["location"] == "/console/sign-in"
        assert (await client.get("/console/triggers")).status_code == 303
        # A copy of the cookie taken before sign-out is no session either.
        client.cookies.set(COOKIE_NAME, copied, path="/console")
        assert (await client.get("/console/triggers")).status_code == 303


async def test_every_console_response_carries_the_security_headers(settings: Settings) -> None:
    _, acme = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        created = await client.post("/triggers", json=webhook_trigger("orders"), headers=acme)
        trigger_id = created.json()["id"]
        await sign_in(client, key_of(acme))
        for path in (
            "/console",
            "/console/triggers",
            f"/console/triggers/{trigger_id}",
            "/console/no-such-page",
            "/console/triggers/not-a-uuid",
        ):
            page = await client.get(path)
            assert page.status_code in (200, 404), path
            assert_console_headers(page)
            assert page.headers["cache-control"] == "no-store"
            assert page.headers["content-type"].startswith("text/html")
            assert_no_inline_code(page)
        for asset, kind in (("console.css", "text/css"), ("console.js", "javascript")):
            static = await client.get(f"/console/static/{asset}")
            assert static.status_code == 200
            assert kind in static.headers["content-type"]
            assert_console_headers(static)
        # The API keeps its JSON answers and its own headers.
        api = await client.get("/triggers/not-a-uuid", headers=acme)
        assert api.status_code == 404
        assert api.json() == {"error": "no such trigger"}
        assert "content-security-policy" not in api.headers


async def test_a_revoked_key_signs_the_session_out(settings: Settings) -> None:
    project_id, acme = await project_with_key(settings, "acme")
    async with control_plane(settings) as client:
        await sign_in(client, key_of(acme))
        assert (await client.get("/console/triggers")).status_code == 200
        async with await AsyncConnection.connect(settings.database.url.get_secret_value()) as db:
            (key,) = await list_api_keys(db, project_id)
            assert await revoke_api_key(db, project_id, key.key_id)
        out = await client.get("/console/triggers")
        assert out.status_code == 303
        assert out.headers["location"] == "/console/sign-in"
        assert cookie_attributes(out, COOKIE_NAME)["max-age"] == "0"
        check = await client.post(
            "/console/cel-check", json={"expression": "true", "kind": "filter"}
        )
        assert check.status_code == 401


async def test_a_session_past_its_ttl_is_signed_out(settings: Settings) -> None:
    settings = settings.override(console__session_ttl_s=1)
    project_id, acme = await project_with_key(settings, "acme")
    session = new_session(key_of(acme), project_id)
    issued_earlier = SessionCodec.from_settings(
        settings.secret_keys, 1, clock=lambda: time.time() - 10
    )
    issued_now = SessionCodec.from_settings(settings.secret_keys, 1)
    async with control_plane(settings) as client:
        fresh = await client.get(
            "/console/triggers", headers={"cookie": f"{COOKIE_NAME}={issued_now.seal(session)}"}
        )
        assert fresh.status_code == 200
        expired = await client.get(
            "/console/triggers",
            headers={"cookie": f"{COOKIE_NAME}={issued_earlier.seal(session)}"},
        )
        assert expired.status_code == 303
        assert expired.headers["location"] == "/console/sign-in"
        # A session naming another project than its key's is no session either.
        other = new_session(key_of(acme), "00000000-0000-0000-0000-000000000000")
        mismatched = await client.get(
            "/console/triggers", headers={"cookie": f"{COOKIE_NAME}={issued_now.seal(other)}"}
        )
        assert mismatched.status_code == 303
