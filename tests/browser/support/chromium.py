"""Headless Chromium driven through Debian's chromedriver, and what the tests read from it.

The browser and the driver are the ones `deploy.local_chromium` found or installed; both paths
are given to Selenium explicitly, so Selenium Manager never looks for (or downloads) either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from deploy.local_chromium import LocalChromium

T = TypeVar("T")

DESKTOP_WIDTH = 1280
PHONE_WIDTH = 390
WINDOW_HEIGHT = 900
HEADLESS_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    f"--window-size={DESKTOP_WIDTH},{WINDOW_HEIGHT}",
)
# A full-page screenshot grows the window to the page's height, up to this.
MAX_SCREENSHOT_HEIGHT = 4000
POLL_S = 0.25
# Reloading a page to see a change costs a request to ingest; twice a second is plenty.
RELOAD_POLL_S = 0.5


def start_browser(chromium: LocalChromium) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium.browser)
    for argument in HEADLESS_ARGS:
        options.add_argument(argument)
    # The browser console's messages (CSP violations, script errors) become readable.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An alert a page opened stays open for the test to find, instead of being dismissed by
    # the driver's next command.
    options.unhandled_prompt_behavior = "ignore"
    return webdriver.Chrome(options=options, service=Service(executable_path=str(chromium.driver)))


def wait_until(
    driver: WebDriver, condition: Callable[[WebDriver], T | None], timeout_s: float, what: str
) -> T:
    """The condition's first truthy value, polled on the page as it is; TimeoutException
    naming `what` after `timeout_s`."""
    waiting = WebDriverWait(
        driver,
        timeout_s,
        poll_frequency=POLL_S,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    # `until` returns the first value that is not falsy, so never None.
    return cast(T, waiting.until(condition, f"waited {timeout_s:g} s for {what}"))


def reload_until(
    driver: WebDriver,
    url: str,
    condition: Callable[[WebDriver], T | None],
    timeout_s: float,
    what: str,
) -> T:
    """Like `wait_until`, loading `url` afresh before each look: for server-rendered pages
    that show a change only when asked again."""

    def reloaded(driver: WebDriver) -> T | None:
        driver.get(url)
        return condition(driver)

    waiting = WebDriverWait(
        driver,
        timeout_s,
        poll_frequency=RELOAD_POLL_S,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    return cast(
        T, waiting.until(reloaded, f"reloaded {url} for {timeout_s:g} s waiting for {what}")
    )


def browser_messages(driver: WebDriver) -> list[dict[str, object]]:
    """The browser console's messages since the last call (Chromium hands each out once)."""
    # Selenium leaves get_log untyped; Chromium answers a list of {level, message, source, ...}.
    entries: list[dict[str, object]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


def csp_violations(entries: list[dict[str, object]]) -> list[str]:
    return [str(e["message"]) for e in entries if "Content Security Policy" in str(e["message"])]


def script_errors(entries: list[dict[str, object]]) -> list[str]:
    """Severe messages from the page's scripts, or about its static assets failing to load.
    A page answered with an error status is not one: the tests ask for some on purpose."""
    return [
        str(e["message"])
        for e in entries
        if e["level"] == "SEVERE"
        and (e.get("source") == "javascript" or "/console/static/" in str(e["message"]))
    ]


@dataclass(frozen=True)
class Screenshots:
    """Full-page PNGs under `directory` (created on first use), one per name and width."""

    directory: Path

    def save(
        self, driver: WebDriver, name: str, widths: tuple[int, ...] = (DESKTOP_WIDTH,)
    ) -> list[Path]:
        """The page as it is at each width, saved as `<name>.png` at the desktop width and
        `<name>-<width>.png` at the others; the window is left at the desktop size."""
        self.directory.mkdir(parents=True, exist_ok=True)
        saved = []
        try:
            for width in widths:
                path = self.path(name, width)
                _resize_to_page(driver, width)
                if not driver.save_screenshot(str(path)):
                    raise AssertionError(f"the browser could not write {path}")
                saved.append(path)
        finally:
            driver.set_window_size(DESKTOP_WIDTH, WINDOW_HEIGHT)
        return saved

    def path(self, name: str, width: int = DESKTOP_WIDTH) -> Path:
        suffix = "" if width == DESKTOP_WIDTH else f"-{width}"
        return self.directory / f"{name}{suffix}.png"


def _resize_to_page(driver: WebDriver, width: int) -> None:
    driver.set_window_size(width, WINDOW_HEIGHT)
    # The window's height includes the browser's own frame; the page gets the rest.
    frame: int = driver.execute_script("return window.outerHeight - window.innerHeight")
    page: int = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(page + frame, MAX_SCREENSHOT_HEIGHT))
