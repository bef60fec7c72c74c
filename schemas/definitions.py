"""The definition registry: what kinds of trigger exist and what their config must look like.

Each definition names its config model (whose JSON Schema the API publishes), the secrets an
instance must have, and for webhook kinds how deliveries are verified. Config models check
meaning as well as shape: CEL compiles and has the right result type, the cron expression
parses and fires, the time zone exists. The data plane reads config that passed these checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from runtime.cel import CelCompileError, CelType, compile, comprehension_depth
from schemas.schedule import ScheduleError, parse_expression, parse_timezone
from schemas.slack_event_types import SLACK_EVENT_TYPES
from schemas.triggers import DefinitionSlug

DefinitionKind = Literal["webhook", "schedule"]
Verification = Literal["slack_v0", "standard_webhooks"]

# What `filter` and `correlation` expressions see: the event (the Slack event, or the webhook's
# JSON body) as a map.
CEL_DECLARATIONS = {"event": CelType.MAP}
CEL_MAX_LENGTH = 4096


def _fail(kind: str, message: str) -> PydanticCustomError:
    # The message goes through a context value: CEL messages contain braces, which a message
    # template would try to format.
    return PydanticCustomError(kind, "{reason}", {"reason": message})


def _cel(result_type: CelType) -> AfterValidator:
    def check(source: str) -> str:
        try:
            compile(source, CEL_DECLARATIONS, result_type)
        except CelCompileError as exc:
            raise _fail(
                "cel_invalid", f"line {exc.line}, column {exc.column}: {exc.message}"
            ) from None
        if comprehension_depth(source) > 1:
            # Its cost is the product of two sizes the sender chooses (runtime/cel/cost.py).
            raise _fail(
                "cel_too_costly",
                "a comprehension (map, filter, all, exists, exists_one) inside another is not "
                "allowed: its cost grows with the product of two list sizes; chain them instead",
            )
        return source

    return AfterValidator(check)


def _slack_event_type(name: str) -> str:
    if name not in SLACK_EVENT_TYPES:
        raise _fail("slack_event_type", f"{name!r} is not a Slack Events API event type")
    return name


def _unique(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        raise _fail("duplicate", "list each event type once")
    return items


def _cron_expression(expression: str) -> str:
    try:
        return parse_expression(expression)
    except ScheduleError as error:
        raise _fail("cron_invalid", str(error)) from None


def _time_zone(name: str) -> str:
    try:
        parse_timezone(name)
    except ScheduleError as error:
        raise _fail("timezone_invalid", str(error)) from None
    return name


BoolExpression = Annotated[str, Field(min_length=1, max_length=CEL_MAX_LENGTH), _cel(CelType.BOOL)]
StringExpression = Annotated[
    str, Field(min_length=1, max_length=CEL_MAX_LENGTH), _cel(CelType.STRING)
]
SlackEventType = Annotated[
    str,
    AfterValidator(_slack_event_type),
    WithJsonSchema({"type": "string", "enum": sorted(SLACK_EVENT_TYPES)}),
]


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimitConfig(ConfigModel):
    """Inbound requests per second for one trigger; ingest answers 429 beyond it."""

    per_second: float = Field(gt=0, le=100_000)
    burst: float | None = Field(default=None, ge=1, le=1_000_000)


class SlackConfig(ConfigModel):
    event_types: Annotated[
        list[SlackEventType],
        Field(
            min_length=1,
            max_length=len(SLACK_EVENT_TYPES),
            description="Slack Events API event types to route.",
            json_schema_extra={"uniqueItems": True},
        ),
        AfterValidator(_unique),
    ]
    filter: BoolExpression | None = Field(
        default=None, description="CEL over `event` (the Slack event); must yield bool."
    )
    rate_limit: RateLimitConfig | None = None


class WebhookConfig(ConfigModel):
    filter: BoolExpression | None = Field(
        default=None, description="CEL over `event` (the JSON body); must yield bool."
    )
    correlation: StringExpression | None = Field(
        default=None,
        description="CEL over `event` yielding the correlation id, which orders deliveries.",
    )
    rate_limit: RateLimitConfig | None = None


class CronConfig(ConfigModel):
    schedule: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_cron_expression)]
    timezone: Annotated[str, Field(max_length=64), AfterValidator(_time_zone)] = "UTC"
    misfire: Literal["skip", "fire_once", "backfill"] = Field(
        default="skip", description="What happens to ticks missed while nothing was running."
    )
    backfill_max_count: int = Field(
        default=100, ge=0, le=1000, description="With `backfill`: at most this many missed ticks."
    )
    backfill_max_age_s: float = Field(
        default=86_400, gt=0, le=30 * 86_400, description="With `backfill`: only this recent."
    )


@dataclass(frozen=True, slots=True)
class Definition:
    slug: DefinitionSlug
    title: str
    description: str
    kind: DefinitionKind
    config_model: type[ConfigModel]
    required_secrets: tuple[str, ...] = ()
    verification: Verification | None = None

    def config_schema(self) -> dict[str, Any]:
        return self.config_model.model_json_schema()

    def validate_config(self, raw: Any) -> dict[str, Any]:
        """The config as stored and published; raises pydantic's ValidationError."""
        return self.config_model.model_validate(raw).model_dump(mode="json", exclude_none=True)


DEFINITIONS: dict[DefinitionSlug, Definition] = {
    definition.slug: definition
    for definition in (
        Definition(
            slug="slack",
            title="Slack Events API",
            description="Events from a Slack app, verified with the app's signing secret.",
            kind="webhook",
            config_model=SlackConfig,
            required_secrets=("SLACK_SIGNING_SECRET",),
            verification="slack_v0",
        ),
        Definition(
            slug="webhook",
            title="Signed webhook",
            description="Any sender that signs with Standard Webhooks and a per-trigger secret.",
            kind="webhook",
            config_model=WebhookConfig,
            required_secrets=("WEBHOOK_SECRET",),
            verification="standard_webhooks",
        ),
        Definition(
            slug="cron",
            title="Schedule",
            description="Fires on a cron schedule in an IANA time zone.",
            kind="schedule",
            config_model=CronConfig,
        ),
    )
}
