"""`python -m dispatchers`: run one member of the dispatchers consumer group."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from functools import partial

import uvloop

from dispatchers.backoff import Backoff
from dispatchers.circuit import CircuitBreakers
from dispatchers.compiled import DispatchTrigger, compile_dispatch_trigger
from dispatchers.consumer import CommittedOffsets, Dispatcher
from dispatchers.delivery import Deliverer
from dispatchers.endpoints import EndpointSlots
from dispatchers.journal import Journal
from dispatchers.limits import DestinationLimits
from dispatchers.targets import Targets
from runtime.config_view import TriggerConfigView
from runtime.consumer_lag import ConsumerLagReporter
from runtime.kafka import admin_client, durable_producer, group_consumer
from runtime.kafka_targets import KafkaTargetPolicy
from runtime.logging import configure_logging
from runtime.ops_server import OpsServer
from runtime.secrets import Keyring
from runtime.settings import Settings, get_settings
from runtime.tracing import Tracing, tracing_from_env
from schemas.topics import ROUTED_EVENTS

log = logging.getLogger("triggerline.dispatchers")


async def serve(settings: Settings, tracing: Tracing | None = None) -> None:
    group = settings.group("dispatchers")
    keyring = Keyring.from_setting(settings.secret_keys)
    consumer = group_consumer(settings, group=group)
    # Every delivery writes a delivery-log record; at thousands per second the default 16 KB
    # batches fill faster than they drain and senders queue up on the accumulator.
    producer = durable_producer(settings, max_batch_size=512 * 1024)
    admin = admin_client(settings)
    view: TriggerConfigView[DispatchTrigger] = TriggerConfigView(
        settings, "dispatcher", partial(compile_dispatch_trigger, keyring=keyring)
    )
    targets = Targets(
        producer,
        allow_private=settings.dispatcher.allow_private_targets,
        max_connections=settings.dispatcher.max_in_flight,
        kafka_topics=KafkaTargetPolicy.from_settings(settings),
        tracing=tracing,
    )
    stopping = asyncio.Event()
    deliverer = Deliverer(
        view=view,
        targets=targets,
        journal=Journal(settings, producer, tracing),
        breakers=CircuitBreakers(
            settings.dispatcher.circuit_failures,
            settings.dispatcher.circuit_cooldown_s,
            max_destinations=settings.dispatcher.destination_table_max,
            idle_s=settings.dispatcher.destination_table_idle_s,
        ),
        limits=DestinationLimits(
            max_destinations=settings.dispatcher.destination_table_max,
            idle_s=settings.dispatcher.destination_table_idle_s,
        ),
        endpoints=EndpointSlots(settings.dispatcher.max_in_flight_per_endpoint),
        backoff=Backoff(settings.dispatcher.backoff_base_s, settings.dispatcher.backoff_cap_s),
        stopping=stopping,
        tracing=tracing,
        group=group,
    )
    dispatcher = Dispatcher(settings, consumer, deliverer, stopping, CommittedOffsets(admin, group))
    started = {"consumer": False, "producer": False, "trigger_config": False}
    ops = OpsServer(
        settings.ops_host,
        settings.dispatcher.metrics_port,
        lambda: {**started, "trigger_config": view.ready},
        view.problems,
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Stop fetching, finish or give back in-flight work within the deadline, commit, close.
        loop.add_signal_handler(signum, dispatcher.stop)
    await ops.start()
    await producer.start()
    started["producer"] = True
    await admin.start()
    await targets.start()
    await view.start()
    await view.wait_ready(60)
    consumer.subscribe([ROUTED_EVENTS.name(settings.topics.prefix)], listener=dispatcher)
    await consumer.start()
    started["consumer"] = True
    lag = asyncio.create_task(ConsumerLagReporter(consumer).run(), name="consumer-lag")
    # What start-up loaded lives as long as the process; full collections skip it.
    gc.freeze()
    try:
        await dispatcher.run()
    finally:
        lag.cancel()
        await asyncio.gather(lag, return_exceptions=True)
        with contextlib.suppress(Exception):
            await consumer.stop()
        await targets.close()
        await view.stop()
        await admin.close()
        await producer.stop()
        await ops.stop()
        log.info("stopped")


def main() -> None:
    settings = get_settings()
    configure_logging("dispatchers", settings)
    uvloop.run(serve(settings, tracing_from_env("dispatchers")))


if __name__ == "__main__":
    main()
