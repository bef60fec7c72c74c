"""Signing in to the console and out again in Chromium: the session lives in an HttpOnly,
SameSite=Strict cookie that page scripts cannot read, a wrong key is refused on the form, and
signing out ends the session."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.browser.support.chromium import (
    DESKTOP_WIDTH,
    PHONE_WIDTH,
    Screenshots,
    browser_messages,
    csp_violations,
    script_errors,
)
from tests.browser.support.console import Console

pytestmark = pytest.mark.browser

SESSION_COOKIE = "tl_console"


async def test_sign_in_holds_the_session_in_an_http_only_cookie(
    console: Console, screenshots: Screenshots
) -> None:
    driver = console.driver
    console.open("/console/triggers")
    assert console.path().startswith("/console/sign-in"), "a page without a session signs in"
    screenshots.save(driver, "sign-in", (DESKTOP_WIDTH, PHONE_WIDTH))

    driver.find_element(By.ID, "api_key").send_keys("tl_not_a_key")
    console.submit(driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]"))
    assert "not a live API key" in driver.find_element(By.ID, "sign-in-error").text
    assert SESSION_COOKIE not in {c["name"] for c in driver.get_cookies()}

    console.sign_in()
    assert "ordinary" in console.text()
    (session,) = [c for c in driver.get_cookies() if c["name"] == SESSION_COOKIE]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert session["path"] == "/console"
    assert SESSION_COOKIE not in driver.execute_script("return document.cookie")

    messages = browser_messages(driver)
    assert csp_violations(messages) == []
    assert script_errors(messages) == []

    console.sign_out()
    assert console.path().startswith("/console/sign-in")
    assert SESSION_COOKIE not in {c["name"] for c in driver.get_cookies()}
    console.open("/console/triggers")
    assert console.path().startswith("/console/sign-in"), "signed out means signed out"
