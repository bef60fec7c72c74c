"""The replay service behind the API (`/replays`) and the CLI (`triggerline replay`): both
start, dry-run, list, show and cancel replays through it and show what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from ingest.api.models import (
    DryRunOut,
    ReplayCounts,
    ReplayOut,
    ReplayPage,
    ReplaySelectionOut,
    TriggerDryRunOut,
)
from ingest.replay import store
from ingest.replay.dry_run import DryRunReport, dry_run
from ingest.replay.outcomes import replay_outcomes
from ingest.replay.requests import ReplayCreate, checked
from ingest.replay.store import Replay
from runtime.settings import Settings
from schemas.redaction import redact_url


@dataclass(frozen=True, slots=True)
class ReplayService:
    settings: Settings

    async def start(
        self, conn: AsyncConnection[Any], project_id: str, created_by: str, given: ReplayCreate
    ) -> ReplayOut | DryRunOut:
        """A dry run's report, or the new pending replay (ingest's replay worker runs it)."""
        request = await checked(conn, self.settings, project_id, given)
        if given.dry_run:
            return dry_run_out(await dry_run(conn, self.settings, project_id, request))
        replay = await store.insert_replay(
            conn,
            project_id,
            created_by,
            request.selection,
            self.settings.replay.max_active_per_project,
        )
        return await self.show(conn, project_id, replay.id)

    async def show(self, conn: AsyncConnection[Any], project_id: str, replay_id: str) -> ReplayOut:
        return await replay_out(conn, await store.find_replay(conn, project_id, replay_id))

    async def list(
        self,
        conn: AsyncConnection[Any],
        project_id: str,
        *,
        limit: int,
        before: datetime | None = None,
    ) -> ReplayPage:
        replays = await store.list_replays(conn, project_id, limit=limit + 1, before=before)
        page = replays[:limit]
        return ReplayPage(
            items=[await replay_out(conn, replay) for replay in page],
            next_before=page[-1].created_at if len(replays) > limit else None,
        )

    async def cancel(
        self, conn: AsyncConnection[Any], project_id: str, replay_id: str
    ) -> ReplayOut:
        return await replay_out(conn, await store.request_cancel(conn, project_id, replay_id))


async def replay_out(conn: AsyncConnection[Any], replay: Replay) -> ReplayOut:
    outcomes = await replay_outcomes(conn, replay.id)
    selection = replay.selection
    target = None
    if selection.target is not None:
        target = msgspec.to_builtins(selection.target)
        target["ref"] = redact_url(selection.target.ref)
    return ReplayOut(
        id=replay.id,
        state=replay.state,
        created_by=replay.created_by,
        created_at=replay.created_at,
        started_at=replay.started_at,
        finished_at=replay.finished_at,
        cancel_requested=replay.cancel_requested,
        error=replay.error,
        selection=ReplaySelectionOut(
            from_time=selection.from_time,
            to_time=selection.to_time,
            trigger_ids=selection.trigger_ids,
            event_ids=selection.event_ids,
            target=target,
            rate_per_s=selection.rate_per_s,
        ),
        counts=ReplayCounts(
            to_scan=replay.to_scan,
            scanned=replay.scanned,
            selected=replay.selected,
            routed=outcomes.routed,
            skipped=outcomes.skipped,
            delivered=outcomes.delivered,
            failed=outcomes.failed,
            in_flight=outcomes.in_flight,
        ),
        settled=replay.finished and outcomes.settled(replay.selected),
    )


def dry_run_out(report: DryRunReport) -> DryRunOut:
    return DryRunOut(
        scanned=report.scanned,
        selected=report.selected,
        routed=report.routed,
        skipped=report.skipped,
        failed=report.failed,
        triggers=[
            TriggerDryRunOut(
                trigger_id=t.trigger_id,
                name=t.name,
                selected=t.selected,
                routed=t.routed,
                skipped=t.skipped.total(),
                failed=t.failed.total(),
                skipped_by_reason=dict(t.skipped.most_common()),
                failed_by_reason=dict(t.failed.most_common()),
            )
            for t in report.triggers.values()
        ],
    )
