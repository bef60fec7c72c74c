"""The baseline for the ingest benchmark: FastAPI on ingest's server stack, answering 200.

Same route shape, same uvicorn options as `python -m ingest` (uvloop and httptools, no access
log), and it reads the body like ingest does; what it leaves out is everything Triggerline
adds: the trigger lookup, the signature, the JSON parse and the Kafka hand-off.

`python -m benchmarks.bare_endpoint <port>`
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

app = FastAPI()


@app.post("/webhooks/{trigger_id}")
async def receive(trigger_id: str, request: Request) -> Response:
    await request.body()
    return JSONResponse({"ok": True})


def main() -> None:
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
