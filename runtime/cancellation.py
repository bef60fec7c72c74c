"""Cancellation that a library reported as an error of its own.

psycopg answers a query interrupted by a task's cancellation with `QueryCanceled`, an ordinary
exception; a retry loop that catches `Exception` would then swallow the cancellation and go on
forever, and whoever awaits the task (a service stopping) would wait forever with it.
"""

from __future__ import annotations

import asyncio


def stop_if_cancelling() -> None:
    """Raise CancelledError when the current task is being cancelled; call it in an
    `except Exception` of a loop that must stop when cancelled."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
