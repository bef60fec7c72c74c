"""`python -m ingest.openapi`: print the control-plane API's OpenAPI schema as JSON.

Ingest does not serve its schema: the port it would be on is public. Feed this to Swagger UI,
a client generator or schemathesis instead.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

from ingest.app import ingest_app


def control_plane_schema() -> dict[str, Any]:
    schema: dict[str, Any] = ingest_app().openapi()
    return schema


def main() -> None:
    sys.stdout.write(orjson.dumps(control_plane_schema(), option=orjson.OPT_INDENT_2).decode())
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
