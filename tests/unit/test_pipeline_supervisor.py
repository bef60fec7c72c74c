"""`triggerline run` restarts a stage that exits on its own, pausing longer if it keeps exiting."""

from __future__ import annotations

import os

import pytest

from deploy.pipeline import STABLE_AFTER_S, Pipeline, restart_pause

pytestmark = pytest.mark.unit

# A real module that prints a line and exits at once: a stage that keeps crashing.
EXITS_AT_ONCE = "platform"


def exited(pipeline: Pipeline) -> float:
    """Wait for the only stage to exit; the supervisor's clock then reads its start time."""
    stage = pipeline.stages[0]
    stage.process.wait(30)
    return stage.started_at


def test_the_pause_doubles_up_to_thirty_seconds() -> None:
    assert [restart_pause(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_stage_that_exits_is_restarted_after_a_growing_pause() -> None:
    pipeline = Pipeline(os.environ, stages=(EXITS_AT_ONCE,))
    pipeline.start()
    first = pipeline.stages[0]
    now = exited(pipeline)

    pipeline.supervise(now)
    assert first.restart_at == now + 1
    pipeline.supervise(now + 0.5)
    assert pipeline.stages[0] is first, "not restarted before its pause is over"

    pipeline.supervise(now + 1)
    second = pipeline.stages[0]
    assert second.process.pid != first.process.pid

    now = exited(pipeline)
    pipeline.supervise(now)
    assert second.restart_at == now + 2
    pipeline.stop()


def test_a_stage_that_ran_for_a_while_is_restarted_after_the_first_pause_again() -> None:
    pipeline = Pipeline(os.environ, stages=(EXITS_AT_ONCE,))
    pipeline.start()
    stage = pipeline.stages[0]
    stage.exits_in_a_row = 5
    now = exited(pipeline) + STABLE_AFTER_S

    pipeline.supervise(now)
    assert stage.restart_at == now + 1
    pipeline.stop()
