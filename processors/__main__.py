"""`python -m processors`: run one worker of the processors group, on the configured engine.

Every engine is a module with `main(settings)`, which runs one worker until SIGTERM. Both read
raw events in the `<prefix>.processors` group, use the decision code in this package, and
commit each raw partition under the transactional id `<group>-0-<partition>`, so a group can
switch engines (stop every worker, start them on the other engine) and carry on from the
committed offsets and deduplication marks. Only the chosen engine is imported.
"""

from __future__ import annotations

import importlib
from typing import Protocol, cast

from runtime.settings import Settings, get_settings

ENGINES = {"batch": "processors.batch_engine", "faust": "processors.faust_engine"}


class Engine(Protocol):
    def main(self, settings: Settings) -> None: ...


def main() -> None:
    settings = get_settings()
    engine = cast(Engine, importlib.import_module(ENGINES[settings.processor.engine]))
    engine.main(settings)


if __name__ == "__main__":
    main()
