"""The processors' trigger-config view: each trigger's routing rules (`kinds.routing`),
compiled once per config revision, with evaluations timed into the processors' histogram."""

from __future__ import annotations

from functools import partial

from kinds.routing import RoutingTrigger, compile_routing_trigger
from runtime.config_view import TriggerConfigView
from runtime.metrics import PROCESSOR_CEL_EVALUATION
from runtime.settings import Settings


def routing_view(settings: Settings) -> TriggerConfigView[RoutingTrigger]:
    """The processors' view of the trigger configs, compiled with the deployment's CEL bounds."""
    engine = settings.cel.engine
    return TriggerConfigView(
        settings,
        "processor",
        partial(
            compile_routing_trigger,
            engine=engine,
            max_collection_items=settings.cel.max_collection_items,
            timer=PROCESSOR_CEL_EVALUATION.labels(engine),
        ),
    )
