"""`python -m processors`: run one faust worker of the processors group."""

from __future__ import annotations

import faust

from processors.app import build_app
from runtime.logging import logging_config
from runtime.settings import get_settings


def main() -> None:
    settings = get_settings()
    app = build_app(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.lower(),
        logging_config=logging_config(settings.log_level),
        # Triggerline logs structured lines; faust's banner and stdout redirection get in the way.
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
