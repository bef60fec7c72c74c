"""Median CEL filter evaluation time per engine, over the processor benchmark's 20 filters and
its event mix: the figure the default engine (`runtime.cel.DEFAULT_ENGINE`) is chosen by.

    .venv/bin/python -m benchmarks.processor_cel_engines [--events 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import orjson

from benchmarks.processor_workload import FILTERS, raw_events, triggers
from kinds.slack import slack_event
from runtime.cel import ENGINES, CelCompileError, CelEvaluationError, CelType, compile


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    events = [
        slack_event(orjson.loads(raw.body)).fields() for raw in raw_events(triggers(), args.events)
    ]
    print(f"{len(FILTERS)} filters x {len(events)} events")
    medians: dict[str, float] = {}
    for engine in ENGINES:
        samples: list[float] = []
        errors = 0
        compile_started = time.perf_counter()
        programs = [compile(f, {"event": CelType.MAP}, CelType.BOOL, engine) for f in FILTERS]
        compile_ms = (time.perf_counter() - compile_started) * 1000 / len(FILTERS)
        for n, event in enumerate(events):
            program = programs[n % len(programs)]
            started = time.perf_counter()
            try:
                program.evaluate({"event": event})
            except (CelEvaluationError, CelCompileError):
                errors += 1
            samples.append(time.perf_counter() - started)
        medians[engine] = statistics.median(samples)
        print(
            f"{engine:16s} median {medians[engine] * 1e6:8.1f} us/eval  "
            f"p99 {statistics.quantiles(samples, n=100)[98] * 1e6:8.1f} us  "
            f"compile {compile_ms:6.2f} ms/filter  errors {errors}"
        )
    fast, reference = medians["cel-expr-python"], medians["celpy"]
    print(f"celpy / cel-expr-python: {reference / fast:.0f}x")


if __name__ == "__main__":
    main()
