"""With PostgreSQL unreachable the control plane answers 503, and ingest keeps running."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from runtime.settings import Settings
from tests.integration.support.control_plane import control_plane
from tests.integration.support.stages import free_port

pytestmark = pytest.mark.integration


async def test_an_unreachable_database_is_503_not_500(settings: Settings) -> None:
    # Nothing listens on a fresh free port, so every connection attempt is refused.
    nowhere = SecretStr(f"postgresql://postgres@127.0.0.1:{free_port()}/triggerline")
    async with control_plane(settings.override(database__url=nowhere)) as client:
        response = await client.get(
            "/triggers", headers={"authorization": "Bearer tl_some-key"}, timeout=30
        )
        assert response.status_code == 503
        assert "retry later" in response.json()["error"]
        assert (await client.get("/healthz")).status_code == 200
