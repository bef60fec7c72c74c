"""A Slack message whose text is `<script>alert(1)</script><img src=x onerror=alert(2)>`, and
one whose event id and channel are markup too, shown by the console in Chromium: each page
shows the text literally and runs nothing (no dialog, no canary set, no handler attribute, no
script but console.js, no CSP violation in the browser's console)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By

from tests.browser.support.chromium import reload_until
from tests.browser.support.console import Console
from tests.browser.support.inert import assert_inert
from tests.browser.support.slack import post_slack, slack_message, slack_trigger
from tests.integration.support.pipeline import Pipeline

pytestmark = pytest.mark.browser

HOSTILE_TEXT = "<script>alert(1)</script><img src=x onerror=alert(2)>"
# Senders choose event ids and channels too; they end up in links, attributes and headings.
HOSTILE_ID = 'Ev"><svg onload=window.__xss_id=1>'
HOSTILE_CHANNEL = "C'\"><img src=x onerror=window.__xss_channel=1>"
# Markup that sets a canary, and a template expression that must not be evaluated.
CANARY_TEXT = "<img src=x onerror=window.__xss_text=1>{{ 7 * 191 }}"
JOURNEY_TIMEOUT_S = 60.0


def journey_path(event_id: str, trigger_id: str) -> str:
    return f"/console/events/{quote(event_id, safe='')}?trigger_id={trigger_id}"


def final_outcome(console: Console) -> str:
    return console.driver.find_element(By.ID, "final-outcome").text


async def test_hostile_slack_text_and_ids_show_literally_and_run_nothing(
    pipeline: Pipeline, console: Console
) -> None:
    trigger_id = await pipeline.create_trigger(slack_trigger("support"))
    await post_slack(pipeline, trigger_id, slack_message("EvHostile1", "C1", HOSTILE_TEXT))
    await post_slack(pipeline, trigger_id, slack_message(HOSTILE_ID, HOSTILE_CHANNEL, CANARY_TEXT))
    console.sign_in()
    driver = console.driver

    # The message: its journey reaches `delivered` and shows the payload as text.
    reload_until(
        driver,
        console.url(journey_path("EvHostile1", trigger_id)),
        lambda _: final_outcome(console) == "delivered",
        JOURNEY_TIMEOUT_S,
        "the hostile message's journey to end delivered",
    )
    payload = driver.find_element(By.ID, "payload").text
    assert HOSTILE_TEXT in payload
    assert HOSTILE_TEXT in console.text()
    assert_inert(driver, console.origin)

    # The trigger page's last deliveries list both events; the hostile id's link leads to its
    # journey, whose heading, correlation id and payload show every character as sent.
    console.open(f"/console/triggers/{trigger_id}")
    deliveries = driver.find_element(By.ID, "deliveries")
    assert "EvHostile1" in deliveries.text
    assert HOSTILE_ID in deliveries.text
    assert_inert(driver, console.origin)
    console.submit(deliveries.find_element(By.LINK_TEXT, HOSTILE_ID))
    assert driver.find_element(By.CSS_SELECTOR, "h1 code").text == HOSTILE_ID
    assert f"{HOSTILE_CHANNEL}:1355517523.000005" in console.text()
    assert CANARY_TEXT in driver.find_element(By.ID, "payload").text
    assert_inert(driver, console.origin)

    # The events search, flat and grouped by the hostile conversation.
    console.open(f"/console/events?trigger_id={trigger_id}")
    assert HOSTILE_ID in console.text()
    assert_inert(driver, console.origin)
    console.open(f"/console/events?trigger_id={trigger_id}&group=correlation")
    assert HOSTILE_CHANNEL in console.text()
    assert_inert(driver, console.origin)
    console.open("/console/triggers")
    assert_inert(driver, console.origin)
