"""`triggerline replay ...`: start, dry-run, watch, resume, cancel and list replays.

The commands build the same request the API takes and call the same replay service, so the CLI
refuses exactly what the API refuses. `start` runs the replay in the foreground with a progress
bar (unless `--detach` leaves it to ingest's replay worker), then waits for the pipeline to
settle and prints the summary.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import orjson
import typer
from psycopg import AsyncConnection

from deploy.registry_commands import ProjectOption, project_id_of
from deploy.replay_progress import ProgressBar, dry_run_summary, summary
from ingest.api.models import DryRunOut, ReplayOut
from ingest.registry.inputs import parsed
from ingest.replay import store
from ingest.replay.requests import ReplayCreate
from ingest.replay.runner import ReplayRunner, RunProgress
from ingest.replay.service import ReplayService
from ingest.replay.worker import runner_name
from runtime.settings import get_settings

replay_app = typer.Typer(
    help="Re-send a time range of events through the pipeline, marked as replays.",
    no_args_is_help=True,
)

ReplayId = Annotated[str, typer.Argument(help="The replay's id.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]
WaitOption = Annotated[
    float, typer.Option(help="Seconds to wait for deliveries to settle before the summary.")
]
WATCH_INTERVAL_S = 0.5


T = TypeVar("T")
# What a command does within its project: with the service, a connection and the project's id.
InProject = Callable[[ReplayService, AsyncConnection[Any], str], Awaitable[T]]


def _in_project(project: str, action: InProject[T]) -> T:
    settings = get_settings()

    async def run() -> T:
        # Progress updates and leases must commit as they are made.
        url = settings.database.url.get_secret_value()
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            return await action(ReplayService(settings), conn, await project_id_of(conn, project))

    return asyncio.run(run())


@replay_app.command("start")
def start(
    *,
    project: ProjectOption,
    from_: Annotated[str, typer.Option("--from", help="Start, ISO 8601 with a time zone.")],
    to: Annotated[str | None, typer.Option(help="End (exclusive); default: now.")] = None,
    trigger: Annotated[list[str] | None, typer.Option(help="A trigger id; repeatable.")] = None,
    event_id: Annotated[list[str] | None, typer.Option(help="An event id; repeatable.")] = None,
    target_url: Annotated[
        str | None, typer.Option(help="Deliver to this http URL instead, for this replay only.")
    ] = None,
    target_topic: Annotated[
        str | None, typer.Option(help="Deliver to this Kafka topic instead.")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Events per second.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Report what it would do; send nothing.")] = False,
    filter_: Annotated[
        str | None, typer.Option("--filter", help="Dry runs: evaluate this CEL filter instead.")
    ] = None,
    event_type: Annotated[
        list[str] | None, typer.Option(help="Dry runs: this event-type allow-list instead.")
    ] = None,
    detach: Annotated[bool, typer.Option(help="Leave it to ingest's replay worker.")] = False,
    wait: WaitOption = 120.0,
    json_: JsonOption = False,
) -> None:
    """Start a replay (or a dry run) of a project's events."""
    body: dict[str, Any] = {"from": from_, "dry_run": dry_run}
    optional = {
        "to": to,
        "trigger_ids": trigger,
        "event_ids": event_id,
        "rate_per_s": rate,
        "filter": filter_,
        "event_types": event_type,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    if target_url is not None and target_topic is not None:
        raise typer.BadParameter("give --target-url or --target-topic, not both")
    if target_url is not None:
        body["target"] = {"kind": "http", "ref": target_url}
    elif target_topic is not None:
        body["target"] = {"kind": "kafka", "ref": target_topic}
    given = parsed(ReplayCreate, body)

    async def run(
        service: ReplayService, conn: AsyncConnection[Any], project_id: str
    ) -> ReplayOut | DryRunOut:
        started = await service.start(conn, project_id, f"cli {getpass.getuser()}", given)
        if isinstance(started, DryRunOut) or detach:
            return started
        if not json_:
            typer.echo(f"replay {started.id} started", err=True)
        return await _run_here(service, conn, project_id, started.id, wait)

    _print(_in_project(project, run), json_)


@replay_app.command("resume")
def resume(replay_id: ReplayId, project: ProjectOption, wait: WaitOption = 120.0) -> None:
    """Run an unfinished replay here, from where it stopped, if nobody else runs it."""

    async def run(service: ReplayService, conn: AsyncConnection[Any], project_id: str) -> ReplayOut:
        await store.find_replay(conn, project_id, replay_id)
        return await _run_here(service, conn, project_id, replay_id, wait)

    _print(_in_project(project, run), json_=False)


@replay_app.command("cancel")
def cancel(replay_id: ReplayId, project: ProjectOption, json_: JsonOption = False) -> None:
    """Stop a replay; what it already sent stays sent."""
    replay = _in_project(project, lambda service, conn, pid: service.cancel(conn, pid, replay_id))
    _print(replay, json_)


@replay_app.command("show")
def show(replay_id: ReplayId, project: ProjectOption, json_: JsonOption = False) -> None:
    """A replay's selection, state and counts."""
    _print(
        _in_project(project, lambda service, conn, pid: service.show(conn, pid, replay_id)), json_
    )


@replay_app.command("list")
def list_(
    project: ProjectOption,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    json_: JsonOption = False,
) -> None:
    """The project's replays, newest first."""
    page = _in_project(project, lambda service, conn, pid: service.list(conn, pid, limit=limit))
    replays = page.items
    if json_:
        typer.echo(orjson.dumps([r.model_dump(mode="json", by_alias=True) for r in replays]))
        return
    for r in replays:
        typer.echo(
            f"{r.id}  {r.state:<9}  {r.created_at:%Y-%m-%d %H:%M:%S}  by {r.created_by}  "
            f"selected {r.counts.selected:,}  delivered {r.counts.delivered:,}  "
            f"failed {r.counts.failed:,}"
        )


async def _run_here(
    service: ReplayService,
    conn: AsyncConnection[Any],
    project_id: str,
    replay_id: str,
    wait: float,
) -> ReplayOut:
    """Runs the replay here with a progress bar, once nobody else holds it (meanwhile it shows
    its holder's progress); then waits up to `wait` seconds for its copies to settle and
    returns its final figures."""
    settings = service.settings
    owner = runner_name("cli")
    bar = ProgressBar()

    def on_progress(progress: RunProgress) -> None:
        bar.update(progress.to_scan, progress.scanned, progress.selected)

    try:
        while True:
            claimed = await store.claim(conn, owner, settings.replay.lease_s, replay_id)
            if claimed is not None:
                try:
                    await ReplayRunner(settings, claimed, owner, conn, on_progress).run()
                except BaseException:
                    await asyncio.shield(store.release(conn, replay_id, owner))
                    raise
                break
            replay = await service.show(conn, project_id, replay_id)
            bar.update(replay.counts.to_scan, replay.counts.scanned, replay.counts.selected)
            if replay.state not in store.UNFINISHED:
                break
            await asyncio.sleep(WATCH_INTERVAL_S)
    finally:
        bar.done()
    return await _settled(service, conn, project_id, replay_id, wait)


async def _settled(
    service: ReplayService,
    conn: AsyncConnection[Any],
    project_id: str,
    replay_id: str,
    wait: float,
) -> ReplayOut:
    deadline = time.monotonic() + wait
    while True:
        replay = await service.show(conn, project_id, replay_id)
        if replay.settled or time.monotonic() >= deadline:
            return replay
        await asyncio.sleep(WATCH_INTERVAL_S)


def _print(result: ReplayOut | DryRunOut, json_: bool) -> None:
    if json_:
        typer.echo(orjson.dumps(result.model_dump(mode="json", by_alias=True)))
    elif isinstance(result, DryRunOut):
        typer.echo(dry_run_summary(result))
    elif result.state in store.UNFINISHED:
        typer.echo(f"replay {result.id}: {result.state} ({result.counts.selected:,} sent so far)")
    else:
        typer.echo(summary(result))
