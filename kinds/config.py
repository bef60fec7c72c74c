"""Building blocks of the kinds' config models, checked for meaning as well as shape.

CEL compiles and yields the right type, lists hold each entry once, rates are positive. The data
plane reads config that passed these checks.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from runtime.cel import CelCompileError, CelType, compile, comprehension_depth

# What `filter` and `correlation` expressions see: the kind's event fields as a map.
CEL_DECLARATIONS = {"event": CelType.MAP}
CEL_MAX_LENGTH = 4096
# Sender event-type names are open-ended (GitHub and Stripe add types all the time), so kinds
# without a closed list bound only their size.
EVENT_TYPE_MAX_LENGTH = 200
EVENT_TYPES_MAX = 500


def config_error(kind: str, message: str) -> PydanticCustomError:
    # The message goes through a context value: CEL messages contain braces, which a message
    # template would try to format.
    return PydanticCustomError(kind, "{reason}", {"reason": message})


def _cel(result_type: CelType) -> AfterValidator:
    def check(source: str) -> str:
        try:
            compile(source, CEL_DECLARATIONS, result_type)
        except CelCompileError as exc:
            raise config_error(
                "cel_invalid", f"line {exc.line}, column {exc.column}: {exc.message}"
            ) from None
        if comprehension_depth(source) > 1:
            # Its cost is the product of two sizes the sender chooses (runtime/cel/cost.py).
            raise config_error(
                "cel_too_costly",
                "a comprehension (map, filter, all, exists, exists_one) inside another is not "
                "allowed: its cost grows with the product of two list sizes; chain them instead",
            )
        return source

    return AfterValidator(check)


def _unique(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        raise config_error("duplicate", "list each event type once")
    return items


BoolExpression = Annotated[str, Field(min_length=1, max_length=CEL_MAX_LENGTH), _cel(CelType.BOOL)]
StringExpression = Annotated[
    str, Field(min_length=1, max_length=CEL_MAX_LENGTH), _cel(CelType.STRING)
]
# A destination's transform: what it returns becomes the CloudEvent's `data`.
PayloadExpression = Annotated[
    str, Field(min_length=1, max_length=CEL_MAX_LENGTH), _cel(CelType.PAYLOAD)
]
OpenEventType = Annotated[str, Field(min_length=1, max_length=EVENT_TYPE_MAX_LENGTH)]
UniqueItems = AfterValidator(_unique)
# Event types to route, for kinds whose senders name types freely; None routes every type.
OpenEventTypes = Annotated[
    list[OpenEventType],
    Field(
        min_length=1,
        max_length=EVENT_TYPES_MAX,
        description="Event types to route (exact names); leave out to route every type.",
        json_schema_extra={"uniqueItems": True},
    ),
    UniqueItems,
]


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimitConfig(ConfigModel):
    """Inbound requests per second for one trigger; ingest answers 429 beyond it."""

    per_second: float = Field(gt=0, le=100_000)
    burst: float | None = Field(default=None, ge=1, le=1_000_000)
