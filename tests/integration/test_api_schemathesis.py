"""schemathesis fuzzes every operation of the control plane's OpenAPI schema: no 5xx, ever.

Ingest runs as a real process on real PostgreSQL and Kafka; requests carry a valid API key (so
the generated bodies reach validation and the database), and a second run carries none. Ingest
does not serve its schema; `python -m ingest.openapi` prints it.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from runtime.settings import Settings
from tests.integration.support.control_plane import WHSEC, project_with_key, webhook_trigger
from tests.integration.support.stages import running_stages, wait_until_ready, with_free_ports

pytestmark = pytest.mark.integration


def printed_schema(path: Path) -> Path:
    printed = subprocess.run(
        [sys.executable, "-m", "ingest.openapi"], check=True, capture_output=True
    )
    path.write_bytes(printed.stdout)
    return path


async def schemathesis(schema: Path, base: str, *options: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(schema),
        "--url",
        base,
        "--checks",
        # No 5xx; every answer has a documented status, content type and body shape.
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--max-examples",
        "25",
        "--seed",
        "20261127",
        "--request-timeout",
        "10",
        "--suppress-health-check",
        "all",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


def assert_every_case_passed(output: str) -> None:
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts is not None, output
    assert int(counts[1]) == int(counts[2]) > 100, output
    tested = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert tested is not None, output
    assert int(tested[1]) == int(tested[2]) == int(tested[3]) >= 12, output


async def test_fuzzing_the_openapi_schema_finds_no_server_errors(
    settings: Settings, tmp_path: Path
) -> None:
    schema = printed_schema(tmp_path / "openapi.json")
    settings = with_free_ports(settings)
    base = f"http://127.0.0.1:{settings.ingest.port}"
    _, auth = await project_with_key(settings, "fuzz")
    with running_stages(settings, "ingest"):
        await wait_until_ready(f"{base}/readyz")
        async with httpx.AsyncClient(base_url=base, headers=auth) as client:
            # Existing resources, so that some generated names collide and ids resolve.
            environment = await client.post(
                "/environments", json={"name": "prod", "secrets": {"WEBHOOK_SECRET": WHSEC}}
            )
            assert environment.status_code == 201
            created = await client.post(
                "/triggers",
                json=webhook_trigger("orders", environment_id=environment.json()["id"]),
            )
            assert created.status_code == 201

        code, output = await schemathesis(
            schema, base, "--header", f"Authorization:{auth['authorization']}"
        )
        assert code == 0, output
        assert_every_case_passed(output)
        anonymous_code, anonymous_output = await schemathesis(schema, base)
        assert anonymous_code == 0, anonymous_output
        assert_every_case_passed(anonymous_output)

        async with httpx.AsyncClient(base_url=base, headers=auth) as client:
            assert (await client.get("/readyz")).status_code == 200
