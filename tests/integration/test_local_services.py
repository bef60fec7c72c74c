"""A second checkout's local services: started from another `.local` while the first
checkout's broker and cluster run on the configured ports, it uses them as they are (creating
nothing, stopping nothing), and refuses a port held by something that is not Kafka."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from deploy import local_kafka, local_postgres
from deploy.local_kafka import LocalKafkaError
from deploy.migrate import apply_migrations
from deploy.ports import port_in_use
from runtime.settings import LOCAL_POSTGRES_PORT, Settings
from tests.integration.support.isolation import scratch_database
from tests.integration.support.stages import free_port

pytestmark = pytest.mark.integration


def test_a_second_checkout_uses_the_running_broker_and_database(
    base_settings: Settings, tmp_path: Path
) -> None:
    # The running pair is the first checkout's (base_settings started or found it).
    port = int(base_settings.kafka.bootstrap_servers.rsplit(":", 1)[1])
    second_checkout = tmp_path / ".local"

    kafka = local_kafka.start(second_checkout, port=port, controller_port=free_port())
    postgres = local_postgres.start(second_checkout)

    assert kafka.started is False
    assert kafka.found_listening is not None
    assert f"pid {kafka.pid} " in kafka.found_listening
    assert postgres.started is False
    assert postgres.found_listening is not None
    # Nothing of its own was fetched, initialised or started...
    assert not local_kafka.KafkaLayout.under(second_checkout).libs.exists()
    assert not local_postgres.PostgresLayout.under(second_checkout).data.exists()
    # ...the database it was given can be migrated...
    with scratch_database(postgres.database_url) as url:
        assert apply_migrations(url)
    # ...and stopping the second checkout's services leaves the first checkout's running.
    assert local_kafka.stop(second_checkout) is False
    assert local_postgres.stop(second_checkout) is False
    assert port_in_use(port)
    with psycopg.connect(postgres.database_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert port_in_use(LOCAL_POSTGRES_PORT)


@contextmanager
def not_kafka() -> Iterator[int]:
    """A port whose listener hangs up on every connection, as a stray server might."""
    server = socket.create_server(("127.0.0.1", 0))
    # Closing a socket does not wake a thread blocked in accept(): it looks up now and then.
    server.settimeout(0.05)
    port: int = server.getsockname()[1]
    stopping = threading.Event()

    def hang_up() -> None:
        while not stopping.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            connection.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stopping.set()
        thread.join(5)
        server.close()


def test_a_port_held_by_something_else_is_refused_naming_the_process(tmp_path: Path) -> None:
    with not_kafka() as port, pytest.raises(LocalKafkaError) as refused:
        local_kafka.start(tmp_path / ".local", port=port, controller_port=free_port())

    message = str(refused.value)
    assert message.startswith(f"port {port} on 127.0.0.1 is held by pid {os.getpid()} (")
    assert message.endswith(
        "which does not answer as a Kafka broker; stop it, or set KAFKA_BOOTSTRAP_SERVERS to "
        "a Kafka broker of your own"
    )
