"""An operator's way through the console in Chromium, over the whole pipeline: sign in, make a
Slack trigger, send it a signed event and watch its journey end delivered, edit the filter (the
editor shows a compile error with line and column as they type) to one that skips, see the next
event `skipped` with the reason, add a destination whose endpoint is gone, re-drive the event's
dead letter once the endpoint is back and see it delivered, then sign out. The main pages are
saved as screenshots at 1280 and 390 px wide on the way."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from tests.browser.support.chromium import (
    DESKTOP_WIDTH,
    PHONE_WIDTH,
    Screenshots,
    reload_until,
    wait_until,
)
from tests.browser.support.console import Console
from tests.browser.support.inert import assert_inert
from tests.browser.support.receiver import SIGNING_SECRET, Receiver, receiver
from tests.browser.support.slack import post_slack, slack_message, slack_trigger
from tests.integration.support.pipeline import Pipeline

pytestmark = pytest.mark.browser

JOURNEY_TIMEOUT_S = 60.0
# The editor compiles 300 ms after typing stops, on the server.
CEL_CHECK_TIMEOUT_S = 10.0
BOTH_WIDTHS = (DESKTOP_WIDTH, PHONE_WIDTH)
SKIPPING_FILTER = 'event.channel_id == "C-ops"'


def journey_path(event_id: str, trigger_id: str) -> str:
    return f"/console/events/{quote(event_id, safe='')}?trigger_id={trigger_id}"


def wait_for_outcome(console: Console, event_id: str, trigger_id: str, outcome: str) -> None:
    """Reload the event's journey until its final outcome is `outcome`."""
    reload_until(
        console.driver,
        console.url(journey_path(event_id, trigger_id)),
        lambda driver: driver.find_element(By.ID, "final-outcome").text == outcome,
        JOURNEY_TIMEOUT_S,
        f"{event_id} to end {outcome}",
    )


def replace_text(field: WebElement, text: str) -> None:
    field.clear()
    field.send_keys(text)


def cel_status(console: Console, field_id: str, expected: str) -> str:
    """What the editor says about the expression in `field_id`, once it says `expected`."""
    status = console.driver.find_element(By.ID, f"{field_id}-cel")
    return wait_until(
        console.driver,
        lambda _: status.text if expected in status.text else None,
        CEL_CHECK_TIMEOUT_S,
        f"the editor to say {expected!r}",
    )


def http_target(url: str) -> dict[str, str]:
    return {"kind": "http", "ref": url, "signing_secret": SIGNING_SECRET}


async def create_trigger(pipeline: Pipeline, endpoint: Receiver) -> str:
    return await pipeline.create_trigger(
        slack_trigger(
            "support",
            destinations=[{"name": "bot", "target": http_target(endpoint.url("/bot"))}],
        )
    )


def edit_filter(console: Console, trigger_id: str) -> None:
    console.open(f"/console/triggers/{trigger_id}")
    field = console.driver.find_element(By.ID, "edit-filter")
    replace_text(field, "event.channel_id ==")
    assert "Line 1, column" in cel_status(console, "edit-filter", "Line 1, column")
    replace_text(field, SKIPPING_FILTER)
    cel_status(console, "edit-filter", "Compiles.")
    console.submit(console.driver.find_element(By.XPATH, "//button[.='Save settings']"))
    assert console.driver.find_element(By.ID, "edit-filter").get_attribute("value") == (
        SKIPPING_FILTER
    )


def add_gone_destination(console: Console, trigger_id: str, endpoint: Receiver) -> None:
    console.open(f"/console/triggers/{trigger_id}")
    driver = console.driver
    driver.find_element(By.XPATH, "//summary[.='Add a destination']").click()
    driver.find_element(By.ID, "dest-new-name").send_keys("archive")
    Select(driver.find_element(By.ID, "dest-new-kind")).select_by_value("http")
    driver.find_element(By.ID, "dest-new-ref").send_keys(endpoint.url("/archive"))
    driver.find_element(By.ID, "dest-new-signing_secret").send_keys(SIGNING_SECRET)
    console.submit(driver.find_element(By.XPATH, "//button[.='Add destination']"))
    assert "archive" in driver.find_element(By.ID, "destinations").text


def redrive(console: Console, event_id: str) -> None:
    """Re-drive the event's letter from the dead-letters page, once it is listed."""
    letter = reload_until(
        console.driver,
        console.url("/console/dead-letters"),
        lambda driver: driver.find_element(
            By.XPATH, f"//article[contains(@class, 'letter')][.//h2/a[.='{event_id}']]"
        ),
        JOURNEY_TIMEOUT_S,
        f"the dead letter of {event_id}",
    )
    assert "410" in letter.text
    console.submit(letter.find_element(By.XPATH, ".//button[.='Re-drive']"))
    summary = console.driver.find_element(By.ID, "redrive-summary").text
    assert "1 sent back" in summary, summary


async def test_an_operator_follows_slack_events_from_sign_in_to_sign_out(
    pipeline: Pipeline, console: Console, screenshots: Screenshots
) -> None:
    driver = console.driver
    with receiver("/archive") as endpoint:
        # 1-2. Sign in; a Slack trigger delivering to the bot's endpoint.
        console.sign_in()
        trigger_id = await create_trigger(pipeline, endpoint)

        # 3-4. A signed event; its journey appears and ends delivered.
        await post_slack(pipeline, trigger_id, slack_message("Ev1", "C1", "deploy the api"))
        wait_for_outcome(console, "Ev1", trigger_id, "delivered")
        assert "Ev1" in endpoint.answered("/bot", 204)
        timeline = driver.find_element(By.CSS_SELECTOR, "ol.timeline").text
        assert "routed" in timeline
        assert "delivered" in timeline
        assert "deploy the api" in driver.find_element(By.ID, "payload").text
        assert_inert(driver, console.origin)

        # 5-6. A filter that skips C1's messages; the next event is skipped, with the reason.
        edit_filter(console, trigger_id)
        await post_slack(pipeline, trigger_id, slack_message("Ev2", "C1", "good morning"))
        wait_for_outcome(console, "Ev2", trigger_id, "skipped")
        assert "filter returned false" in driver.find_element(By.CSS_SELECTOR, "ol.timeline").text
        assert "Ev2" not in endpoint.answered("/bot", 204)

        # 7. A destination whose endpoint is gone dead-letters the next event; once the
        # endpoint is back, re-driving the letter delivers it.
        add_gone_destination(console, trigger_id, endpoint)
        await post_slack(pipeline, trigger_id, slack_message("Ev3", "C-ops", "deploy again"))
        wait_for_outcome(console, "Ev3", trigger_id, "dead_lettered")
        assert endpoint.answered("/archive", 410) == ["Ev3"]
        console.open("/console/dead-letters")
        screenshots.save(driver, "dead-letters", BOTH_WIDTHS)
        endpoint.gone.clear()
        redrive(console, "Ev3")
        assert_inert(driver, console.origin)
        wait_for_outcome(console, "Ev3", trigger_id, "delivered")
        assert endpoint.answered("/archive", 204) == ["Ev3"]
        assert endpoint.answered("/bot", 204) == ["Ev1", "Ev3"], "the bot got Ev3 once"
        screenshots.save(driver, "journey", BOTH_WIDTHS)

        # The other main pages, as they now are.
        for name, path in [
            ("triggers", "/console/triggers"),
            ("trigger", f"/console/triggers/{trigger_id}"),
            ("events", f"/console/events?trigger_id={trigger_id}"),
            ("replays", "/console/replays"),
            ("ops", "/console/ops"),
        ]:
            console.open(path)
            assert_inert(driver, console.origin)
            screenshots.save(driver, name, BOTH_WIDTHS)

        # 8. Signing out ends the session: the cookie is gone and pages ask to sign in.
        console.sign_out()
        assert "tl_console" not in {c["name"] for c in driver.get_cookies()}
        console.open(f"/console/triggers/{trigger_id}")
        assert console.path().startswith("/console/sign-in")
