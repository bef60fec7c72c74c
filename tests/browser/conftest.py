"""The console in a real headless Chromium, over the whole pipeline on real Kafka and PostgreSQL.

Debian's `chromium` and `chromedriver` are found, or installed with apt-get on first use (as the
integration fixtures install PostgreSQL). Each test gets its own pipeline (ingest, processors,
dispatchers and the delivery-log sink as processes, on its own topics and database) and its own
browser. Screenshots go to `.local/artifacts/screenshots/`; a failed test leaves one of the page
it was on, with the page's HTML beside it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from deploy import local_chromium
from deploy.local_chromium import LocalChromium
from runtime.settings import Settings
from tests.browser.support.chromium import Screenshots, start_browser
from tests.browser.support.console import Console
from tests.browser.support.inert import open_dialog

# The integration suite's fixtures for real services: one base per session, and per test a
# migrated database of its own and topics under a prefix of its own.
from tests.integration.conftest import base_settings, database_url, settings
from tests.integration.support.pipeline import Pipeline, running_pipeline

__all__ = ["base_settings", "database_url", "settings"]

_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call" and call.excinfo is not None:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(scope="session")
def chromium() -> LocalChromium:
    return local_chromium.ensure()


@pytest.fixture(scope="session")
def screenshots() -> Screenshots:
    # Only the local directory is needed: a test of the browser alone starts no services.
    found = Screenshots(Settings().local_dir / "artifacts" / "screenshots")
    # A failure's page is this session's, or none: older ones would be mistaken for it.
    for stale in found.directory.glob("failed-*"):
        stale.unlink()
    return found


@pytest.fixture
def browser(
    chromium: LocalChromium, screenshots: Screenshots, request: pytest.FixtureRequest
) -> Iterator[WebDriver]:
    driver = start_browser(chromium)
    try:
        yield driver
        if request.node.stash.get(_FAILED, False):
            # A dialog left open would refuse the screenshot.
            if open_dialog(driver) is not None:
                driver.switch_to.alert.dismiss()
            name = "failed-" + re.sub(r"[^\w.-]+", "_", request.node.name)
            screenshots.save(driver, name)
            screenshots.path(name).with_suffix(".html").write_text(driver.page_source)
    finally:
        driver.quit()


@pytest.fixture
async def pipeline(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Pipeline]:
    # The dispatchers (inheriting the environment) may deliver to receivers on loopback.
    monkeypatch.setenv("TRIGGERLINE_DISPATCHER_ALLOW_PRIVATE_TARGETS", "true")
    async with running_pipeline(settings) as running:
        yield running


@pytest.fixture
def console(browser: WebDriver, pipeline: Pipeline) -> Console:
    """The pipeline's console in the browser, for the project whose key `pipeline.auth` holds."""
    api_key = pipeline.auth["authorization"].removeprefix("Bearer ")
    return Console(browser, str(pipeline.client.base_url).rstrip("/"), api_key)
