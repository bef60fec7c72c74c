"""`triggerline destinations ...`: list, add, update and remove a trigger's destinations.

The commands build the same typed input as `/triggers/{id}/destinations` and call the same
control-plane service, so the CLI refuses exactly what the API refuses, with the same messages
and field paths. A destination prints as the API shows it: whether it has a signing secret,
never the secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import orjson
import typer
from psycopg import AsyncConnection

from deploy.registry_commands import ProjectOption, TriggerId, connect, control_plane, project_id_of
from ingest.registry.destinations import shown
from ingest.registry.inputs import DestinationIn, DestinationUpdate, parsed
from ingest.registry.service import ControlPlane
from ingest.registry.store import find_trigger

destinations_app = typer.Typer(
    help="A trigger's destinations: where its events are delivered, each with its own target, "
    "filter, transform and limits.",
    no_args_is_help=True,
)

NameOption = Annotated[str, typer.Option("--name", help="The destination's name.")]
KindOption = Annotated[str | None, typer.Option("--kind", help="Target kind: http, kafka, noop.")]
RefOption = Annotated[str, typer.Option("--ref", help="With --kind: URL or topic name.")]
SigningSecretOption = Annotated[
    str | None,
    typer.Option(
        "--signing-secret",
        help="With --kind http: whsec_<base64> that signs deliveries; omitted on update, the "
        "current one stays.",
    ),
]
TimeoutOption = Annotated[
    float | None, typer.Option("--timeout-s", help="With --kind: one attempt's timeout.")
]
AttemptsOption = Annotated[
    int | None, typer.Option("--max-attempts", help="With --kind: attempts before dead-letter.")
]
MaxAgeOption = Annotated[
    float | None,
    typer.Option("--max-age-s", help="With --kind: seconds after the first attempt to give up."),
]
FilterOption = Annotated[
    str | None, typer.Option("--filter", help="CEL (bool) over `event`, after the trigger's.")
]
TransformOption = Annotated[
    str | None,
    typer.Option("--transform", help="CEL over `event` yielding the CloudEvent's data."),
]
RateOption = Annotated[float | None, typer.Option("--rate", help="Deliveries per second, at most.")]
BurstOption = Annotated[
    int | None, typer.Option("--burst", help="With --rate: deliveries at once (default 1).")
]
ConcurrencyOption = Annotated[
    int | None, typer.Option("--max-concurrency", help="Deliveries in progress at once.")
]

T = TypeVar("T")
# What a command does to a trigger: with the service, a connection and the project's id.
InProject = Callable[[ControlPlane, AsyncConnection[Any], str], Awaitable[T]]


@destinations_app.command("list")
def destinations_list(*, project: ProjectOption, trigger_id: TriggerId) -> None:
    """Print the trigger's destinations as JSON, in order."""

    async def listed(plane: ControlPlane, conn: AsyncConnection[Any], project_id: str) -> Any:
        row = await find_trigger(conn, project_id, trigger_id)
        return [shown(destination) for destination in row.destinations]

    _print(_in_project(project, listed))


@destinations_app.command("add")
def destinations_add(
    *,
    project: ProjectOption,
    trigger_id: TriggerId,
    name: NameOption,
    kind: Annotated[str, typer.Option("--kind", help="Target kind: http, kafka or noop.")] = "noop",
    ref: RefOption = "",
    signing_secret: SigningSecretOption = None,
    timeout_s: TimeoutOption = None,
    max_attempts: AttemptsOption = None,
    max_age_s: MaxAgeOption = None,
    filter_: FilterOption = None,
    transform: TransformOption = None,
    rate: RateOption = None,
    burst: BurstOption = None,
    max_concurrency: ConcurrencyOption = None,
) -> None:
    """Add a destination to a trigger and print it."""
    raw: dict[str, Any] = {
        "name": name,
        "target": _target(
            kind,
            ref,
            signing_secret=signing_secret,
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            max_age_s=max_age_s,
        ),
    }
    if filter_ is not None:
        raw["filter"] = filter_
    if transform is not None:
        raw["transform"] = transform
    if rate is not None:
        raw["rate_limit"] = _rate_limit(rate, burst)
    elif burst is not None:
        raise typer.BadParameter("--burst needs --rate")
    if max_concurrency is not None:
        raw["max_concurrency"] = max_concurrency
    given = parsed(DestinationIn, raw)

    async def add(plane: ControlPlane, conn: AsyncConnection[Any], project_id: str) -> Any:
        _, added = await plane.add_destination(conn, project_id, trigger_id, given)
        return shown(added)

    _print(_in_project(project, add))


@destinations_app.command("update")
def destinations_update(
    *,
    project: ProjectOption,
    trigger_id: TriggerId,
    name: NameOption,
    rename: Annotated[str | None, typer.Option("--rename", help="A new name.")] = None,
    kind: KindOption = None,
    ref: RefOption = "",
    signing_secret: SigningSecretOption = None,
    timeout_s: TimeoutOption = None,
    max_attempts: AttemptsOption = None,
    max_age_s: MaxAgeOption = None,
    filter_: FilterOption = None,
    clear_filter: Annotated[bool, typer.Option("--clear-filter")] = False,
    transform: TransformOption = None,
    clear_transform: Annotated[bool, typer.Option("--clear-transform")] = False,
    rate: RateOption = None,
    burst: BurstOption = None,
    clear_rate_limit: Annotated[bool, typer.Option("--clear-rate-limit")] = False,
    max_concurrency: ConcurrencyOption = None,
    clear_max_concurrency: Annotated[bool, typer.Option("--clear-max-concurrency")] = False,
) -> None:
    """Change the options given, leave the rest, and print the destination. --kind replaces
    the whole target; --clear-... removes a filter, transform or limit."""
    raw: dict[str, Any] = {}
    if rename is not None:
        raw["name"] = rename
    target_options = (timeout_s, max_attempts, max_age_s, signing_secret)
    if kind is not None:
        raw["target"] = _target(
            kind,
            ref,
            signing_secret=signing_secret,
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            max_age_s=max_age_s,
        )
    elif ref or any(option is not None for option in target_options):
        raise typer.BadParameter(
            "--ref, --signing-secret, --timeout-s, --max-attempts and --max-age-s replace the "
            "target with --kind"
        )
    _set_or_clear(raw, "filter", filter_, clear_filter, "--filter")
    _set_or_clear(raw, "transform", transform, clear_transform, "--transform")
    if burst is not None and rate is None:
        raise typer.BadParameter("--burst needs --rate")
    rate_limit = None if rate is None else _rate_limit(rate, burst)
    _set_or_clear(raw, "rate_limit", rate_limit, clear_rate_limit, "--rate")
    _set_or_clear(
        raw, "max_concurrency", max_concurrency, clear_max_concurrency, "--max-concurrency"
    )
    given = parsed(DestinationUpdate, raw)

    async def update(plane: ControlPlane, conn: AsyncConnection[Any], project_id: str) -> Any:
        _, updated = await plane.update_destination(conn, project_id, trigger_id, name, given)
        return shown(updated)

    _print(_in_project(project, update))


@destinations_app.command("remove")
def destinations_remove(*, project: ProjectOption, trigger_id: TriggerId, name: NameOption) -> None:
    """Remove a destination; a trigger keeps at least one."""

    async def remove(plane: ControlPlane, conn: AsyncConnection[Any], project_id: str) -> None:
        await plane.remove_destination(conn, project_id, trigger_id, name)

    _in_project(project, remove)
    typer.echo(f"removed destination {name!r} from {trigger_id}")


def _in_project(project: str, action: InProject[T]) -> T:
    plane = control_plane()

    async def run() -> T:
        async with await connect() as conn:
            return await action(plane, conn, await project_id_of(conn, project))

    return asyncio.run(run())


def _print(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _target(
    kind: str,
    ref: str,
    *,
    signing_secret: str | None,
    timeout_s: float | None,
    max_attempts: int | None,
    max_age_s: float | None,
) -> dict[str, Any]:
    optional = {
        "signing_secret": signing_secret,
        "timeout_s": timeout_s,
        "max_attempts": max_attempts,
        "max_age_s": max_age_s,
    }
    given = {field: value for field, value in optional.items() if value is not None}
    return {"kind": kind, "ref": ref, **given}


def _rate_limit(rate: float, burst: int | None) -> dict[str, Any]:
    return {"per_second": rate} | ({} if burst is None else {"burst": burst})


def _set_or_clear(raw: dict[str, Any], field: str, value: Any, clear: bool, flag: str) -> None:
    """`value` when given, null with `--clear-...`, otherwise left out (unchanged)."""
    if value is not None and clear:
        raise typer.BadParameter(f"give {flag} or --clear-{field.replace('_', '-')}, not both")
    if value is not None or clear:
        raw[field] = value
