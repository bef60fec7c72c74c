"""Starting the local services when their port is already held: a broker or database that
answers is used as it is (another checkout's), anything else is refused naming the process."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from deploy import local_kafka, local_postgres
from deploy.local_kafka import LocalKafkaError
from deploy.local_postgres import LocalPostgresError
from deploy.ports import PortHolder, holder

pytestmark = pytest.mark.unit

OTHER_BROKER = PortHolder(
    4242, "/usr/bin/java ... kafka.Kafka /elsewhere/.local/kafka/server.properties"
)


def never(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("nothing is fetched, installed or started for a service found running")


@pytest.fixture
def port_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both local ports are held by processes this checkout did not start."""
    for module in (local_kafka, local_postgres):
        monkeypatch.setattr(module, "port_in_use", lambda *_args: True)
        monkeypatch.setattr(module, "holder", lambda _port: OTHER_BROKER)
    for name in ("fetch", "_launch", "_format_storage"):
        monkeypatch.setattr(local_kafka, name, never)
    for name in ("server_bin_dir", "_prepare_home", "_start_server"):
        monkeypatch.setattr(local_postgres, name, never)


@pytest.mark.usefixtures("port_held")
def test_a_broker_answering_on_the_port_is_used_and_said_to_be_someone_elses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(local_kafka, "_answers", lambda _servers: True)

    kafka = local_kafka.start(tmp_path, port=19092, controller_port=19093)

    assert (kafka.started, kafka.pid, kafka.log) == (False, 4242, None)
    assert kafka.found_listening == str(OTHER_BROKER)
    assert not local_kafka.KafkaLayout.under(tmp_path).pid_file.exists()


@pytest.mark.usefixtures("port_held")
def test_a_port_held_by_something_else_than_kafka_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(local_kafka, "_answers", lambda _servers: False)

    with pytest.raises(LocalKafkaError) as refused:
        local_kafka.start(tmp_path, port=19092, controller_port=19093)

    assert str(refused.value) == (
        f"port 19092 on 127.0.0.1 is held by {OTHER_BROKER}, which does not answer as a Kafka "
        "broker; stop it, or set KAFKA_BOOTSTRAP_SERVERS to a Kafka broker of your own"
    )


@pytest.mark.usefixtures("port_held")
def test_a_database_that_can_hold_triggerlines_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    created: list[bool] = []
    monkeypatch.setattr(local_postgres, "_create_database", lambda: created.append(True))

    postgres = local_postgres.start(tmp_path)

    assert created == [True]
    assert (postgres.started, postgres.log) == (False, None)
    assert postgres.database_url == local_postgres.DATABASE_URL
    assert postgres.found_listening == str(OTHER_BROKER)
    assert not local_postgres.PostgresLayout.under(tmp_path).data.exists()


@pytest.mark.usefixtures("port_held")
def test_a_database_port_that_cannot_serve_is_refused_naming_the_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refused() -> None:
        cause = psycopg.OperationalError("received invalid response to SSL negotiation: H")
        raise LocalPostgresError("cannot reach the local cluster") from cause

    monkeypatch.setattr(local_postgres, "_create_database", refused)

    with pytest.raises(LocalPostgresError) as error:
        local_postgres.start(tmp_path)

    assert str(error.value) == (
        f"port 15432 on 127.0.0.1 is held by {OTHER_BROKER}, which cannot serve as "
        "Triggerline's database (received invalid response to SSL negotiation: H); stop it, "
        "or set DATABASE_URL to a PostgreSQL database of your own"
    )


def test_the_process_listening_on_a_port_is_found_through_proc(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    header = "  sl  local_address rem_address st tx_queue rx_queue tr tm->when retrnsmt uid inode"
    listening = (
        "   0: 0100007F:4A94 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 777 1"
    )
    connected = (
        "   1: 0100007F:4A94 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  0  0 778 1"
    )
    (tmp_path / "net" / "tcp").write_text("\n".join((header, listening, connected)) + "\n")
    (tmp_path / "net" / "tcp6").write_text(header + "\n")
    for pid, inode in (("31", "778"), ("42", "777")):
        (tmp_path / pid / "fd").mkdir(parents=True)
        os.symlink(f"socket:[{inode}]", tmp_path / pid / "fd" / "3")
        (tmp_path / pid / "cmdline").write_bytes(f"server\0--pid\0{pid}\0".encode())
    (tmp_path / "self").mkdir()

    assert holder(0x4A94, proc=tmp_path) == PortHolder(42, "server --pid 42")
    assert holder(0x4A95, proc=tmp_path) is None
