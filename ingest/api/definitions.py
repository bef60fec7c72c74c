"""`/definitions`: the kinds of trigger there are, with the JSON Schema of their config."""

from __future__ import annotations

from fastapi import APIRouter

from ingest.api.auth import ProjectId
from ingest.api.dependencies import documented_errors
from ingest.api.models import DefinitionOut
from kinds import KINDS

router = APIRouter(prefix="/definitions", tags=["definitions"])


@router.get("", responses=documented_errors())
async def list_(project_id: ProjectId) -> list[DefinitionOut]:
    return [
        DefinitionOut(
            slug=definition.slug,
            title=definition.title,
            description=definition.description,
            kind=definition.arrives_by,
            config_schema=definition.config_schema(),
            required_secrets=list(definition.required_secrets),
            verification=definition.verification,
        )
        for definition in KINDS.values()
    ]
