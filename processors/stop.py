"""How a processor worker stops when it can no longer trust its Kafka transaction.

A failed send or transaction step, a fenced producer, or a failed rebalance step leaves the
worker unsure which of its outputs Kafka will keep. Dead-lettering the event at hand would be
wrong, and a graceful stop could commit offsets past events whose outputs were aborted. So the
worker exits at once, exactly as a SIGKILL would: Kafka aborts its open transactions, and after a
restart (a service manager's, or `triggerline run`'s) the events are read again from the
committed offsets.
"""

from __future__ import annotations

import logging
import os
from typing import NoReturn

log = logging.getLogger("triggerline.processors")

# The exit status of a worker stopped because a transaction was lost (EX_TEMPFAIL).
EXIT_TRANSACTION_LOST = 75


def stop_worker_now(reason: BaseException) -> NoReturn:
    """Stop as a SIGKILL would: no graceful stop, no commit, no flush."""
    log.critical("transaction lost; stopping the worker", extra={"error": repr(reason)})
    logging.shutdown()
    os._exit(EXIT_TRANSACTION_LOST)
