"""The console as a signed-in operator sees it in the browser: open a page, submit a form
and wait for the page it leads to, sign in and out."""

from __future__ import annotations

from dataclasses import dataclass

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.browser.support.chromium import wait_until

PAGE_TIMEOUT_S = 30.0
LEAVING = "__tlLeaving"


@dataclass(frozen=True)
class Console:
    driver: WebDriver
    # Where ingest listens, e.g. http://127.0.0.1:41234.
    origin: str
    api_key: str

    def url(self, path: str) -> str:
        return self.origin + path

    def open(self, path: str) -> None:
        self.driver.get(self.url(path))

    def path(self) -> str:
        """The path (and query) the browser shows."""
        return self.driver.current_url.removeprefix(self.origin)

    def text(self) -> str:
        """What the page shows, as a reader sees it."""
        return self.driver.find_element(By.TAG_NAME, "body").text

    def submit(self, button: WebElement) -> None:
        """Click a form's button and wait until the page it leads to has loaded.

        The page being left is marked with a global; the next document has none. (Waiting for
        an element of the old page to go stale races with the navigation: Chromium may answer
        the check with an error about the node rather than "stale".)"""
        self.driver.execute_script(f"window.{LEAVING} = true")
        button.click()
        wait_until(self.driver, _arrived, PAGE_TIMEOUT_S, "the next page")

    def sign_in(self) -> None:
        self.open("/console/sign-in")
        self.driver.find_element(By.ID, "api_key").send_keys(self.api_key)
        self.submit(self.driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]"))
        assert self.path() == "/console/triggers", self.text()

    def sign_out(self) -> None:
        self.submit(self.driver.find_element(By.XPATH, "//button[normalize-space()='Sign out']"))


def _arrived(driver: WebDriver) -> bool:
    try:
        return bool(
            driver.execute_script(f"return !window.{LEAVING} && document.readyState === 'complete'")
        )
    except WebDriverException:
        return False  # the call met the old page going away; ask the next one
