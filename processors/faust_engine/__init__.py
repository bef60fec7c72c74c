"""The faust engine: faust-streaming with processing_guarantee="exactly_once" (the reference)."""

from __future__ import annotations

import faust

from processors.faust_engine.app import build_app
from runtime.logging import logging_config
from runtime.settings import Settings
from runtime.tracing import tracing_from_env


def main(settings: Settings) -> None:
    worker = faust.Worker(
        build_app(settings, tracing_from_env("processors")),
        loglevel=settings.log_level.lower(),
        logging_config=logging_config(settings.log_level, settings.log_format, "processors"),
        # Triggerline logs structured lines; faust's banner and stdout redirection get in the way.
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
