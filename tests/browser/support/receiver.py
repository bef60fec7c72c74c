"""http destinations' endpoint on 127.0.0.1: a request whose Standard Webhooks signature does not
verify (with the `standardwebhooks` library, under SIGNING_SECRET) answers 401; a path in `gone`
answers 410 (the dispatchers give up at once and dead-letter the event), any other path 204. A
test "fixes" an endpoint by taking its path out of `gone`.

It serves from its own thread rather than the test's event loop: Selenium's calls block that
loop while the browser waits for a page, and the dispatchers must get their answers meanwhile.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

MAX_BODY_BYTES = 1 << 20
SIGNING_SECRET = "whsec_" + base64.b64encode(b"console-browser-endpoint-key-32b").decode()


@dataclass
class Receiver:
    port: int
    gone: set[str] = field(default_factory=set)
    # (path, webhook-id, status answered) of every request, in arrival order.
    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answered(self, path: str, status: int) -> list[str]:
        """The webhook ids of the requests to `path` answered with `status`."""
        return [webhook_id for p, webhook_id, s in list(self.requests) if (p, s) == (path, status)]


@contextmanager
def receiver(*gone: str) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("content-length") or 0), MAX_BODY_BYTES)
            body = self.rfile.read(length)
            try:
                Webhook(SIGNING_SECRET).verify(body, dict(self.headers))
            except Exception:  # the library raises its own and others for each way to fail
                status = HTTPStatus.UNAUTHORIZED
            else:
                gone = self.path in found.gone
                status = HTTPStatus.GONE if gone else HTTPStatus.NO_CONTENT
            found.requests.append((self.path, self.headers.get("webhook-id", ""), status))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # pytest shows the test's own output; the access log adds nothing

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found = Receiver(server.server_address[1], set(gone))
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
