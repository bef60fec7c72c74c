"""Checks that a console page ran nothing but its own script: no dialog opened, no canary set,
no element with an event-handler attribute, no script but console.js, no CSP violation."""

from __future__ import annotations

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser.support.chromium import browser_messages, csp_violations, script_errors

# Globals the hostile payloads would set if any of them ran.
CANARIES = ("__xss", "__xss_id", "__xss_channel", "__xss_text")
OWN_SCRIPT = "/console/static/console.js"


def assert_inert(driver: WebDriver, origin: str) -> None:
    # First: while a dialog is open, the driver refuses every other command.
    dialog = open_dialog(driver)
    assert dialog is None, f"the page opened a dialog: {dialog!r}"
    where = driver.current_url
    set_canaries = driver.execute_script(
        "return arguments[0].filter(function (name) { return name in window; })", list(CANARIES)
    )
    assert set_canaries == [], f"{where} ran a payload: {set_canaries} are set"
    handlers = driver.execute_script(
        "return Array.from(document.querySelectorAll('*')).filter(function (e) {"
        "  return Array.from(e.attributes).some(function (a) { return a.name.startsWith('on'); });"
        "}).map(function (e) { return e.outerHTML.slice(0, 200); })"
    )
    assert handlers == [], f"{where} has elements with event handlers: {handlers}"
    injected = driver.execute_script(
        "return document.querySelectorAll('main img, main svg, main iframe, main object').length"
    )
    assert injected == 0, f"{where} shows {injected} elements a payload would have made"
    messages = browser_messages(driver)
    assert csp_violations(messages) == [], f"{where}: {csp_violations(messages)}"
    assert script_errors(messages) == [], f"{where}: {script_errors(messages)}"
    scripts = driver.execute_script(
        "return Array.from(document.scripts, function (s) { return s.src || s.text; })"
    )
    assert scripts == [origin + OWN_SCRIPT], f"{where} has other scripts: {scripts}"


def open_dialog(driver: WebDriver) -> str | None:
    """The text of the alert, confirm or prompt the page has open, if any."""
    try:
        return driver.switch_to.alert.text
    except NoAlertPresentException:
        return None
