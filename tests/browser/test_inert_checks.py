"""The XSS checks can fail: pages that run a payload (served without the console's CSP), and one
whose payload the CSP blocked, are caught by `assert_inert` in the same Chromium."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser.support.inert import assert_inert

pytestmark = pytest.mark.browser

PAGES = {
    "/alert": "<main><p>hi</p><img src=x onerror=alert(2)></main>",
    "/canary": "<main><p>hi</p><script>window.__xss = 1</script></main>",
    "/handler": "<main><p onclick='1'>hi</p></main>",
    # Served with the console's CSP, which blocks the script: the violation is what is caught.
    "/blocked": "<main><p>hi</p><script>window.__xss = 1</script></main>",
}
CSP = "default-src 'none'; script-src 'self'"


@contextmanager
def vulnerable_site() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PAGES.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            if self.path == "/blocked":
                self.send_header("content-security-policy", CSP)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("path", "caught"),
    [
        ("/alert", "opened a dialog: '2'"),
        ("/canary", "__xss"),
        ("/handler", "event handlers"),
        ("/blocked", "Content Security Policy"),
    ],
)
def test_a_page_that_runs_a_payload_is_caught(browser: WebDriver, path: str, caught: str) -> None:
    with vulnerable_site() as origin:
        browser.get(origin + path)
        with pytest.raises(AssertionError, match=caught):
            assert_inert(browser, origin)
