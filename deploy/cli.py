"""The `triggerline` command.

Each command is a thin shell over a deploy module: it picks settings, calls one function and
prints what happened. New commands go on `app`, or on a sub-app added with `app.add_typer`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from pydantic_settings import BaseSettings

from deploy import local_kafka, local_postgres
from deploy.destination_commands import destinations_app
from deploy.group_commands import groups_app
from deploy.group_reset import GroupResetError
from deploy.host import HostCommandError
from deploy.key_commands import api_keys_app, keys_app
from deploy.local_kafka import LocalKafka, LocalKafkaError
from deploy.local_postgres import LocalPostgres, LocalPostgresError
from deploy.local_secrets import with_secret_keys
from deploy.migrate import MigrationError, apply_migrations
from deploy.pipeline import Pipeline, child_env
from deploy.preview_commands import preview_filter_command
from deploy.redrive_commands import dead_letters_app
from deploy.registry_commands import projects_app, triggers_app
from deploy.replay_commands import replay_app
from deploy.topic_manifest import TopicManifestError, kafka_topics_yaml
from deploy.topics import TopicReport, ensure_topics, read_topic
from ingest.registry.errors import RegistryError
from runtime.logging import LogFormat
from runtime.settings import Settings, get_settings
from runtime.status import read_status
from runtime.status_text import format_status, status_json
from runtime.topic_catalogue import TopicCatalogueError
from schemas.topics import CATALOGUE

app = typer.Typer(
    help="Triggerline: verified webhooks and schedules become delivered events.",
    no_args_is_help=True,
    add_completion=False,
)
kafka_app = typer.Typer(help="The local Kafka broker.", no_args_is_help=True)
postgres_app = typer.Typer(help="The local PostgreSQL cluster.", no_args_is_help=True)
topics_app = typer.Typer(help="The topic catalogue on the cluster.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(postgres_app, name="postgres")
app.add_typer(topics_app, name="topics")
app.add_typer(projects_app, name="projects")
app.add_typer(triggers_app, name="triggers")
triggers_app.command("preview-filter")(preview_filter_command)
app.add_typer(destinations_app, name="destinations")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(keys_app, name="keys")
app.add_typer(replay_app, name="replay")
app.add_typer(groups_app, name="groups")

# Failures whose message is written for the user: printed without a traceback. A registry
# refusal prints as the API answers it: the message, then each refused field's path and message.
USER_ERRORS: tuple[type[Exception], ...] = (
    RegistryError,
    LocalKafkaError,
    LocalPostgresError,
    MigrationError,
    TopicCatalogueError,
    TopicManifestError,
    HostCommandError,
    GroupResetError,
)


@app.command()
def up() -> None:
    """Start local PostgreSQL and Kafka, except those set in the environment; migrate."""
    settings = get_settings()
    if _user_configured(settings.database, "url"):
        typer.echo("postgres: DATABASE_URL is set; not starting a local cluster")
    else:
        _report_postgres(local_postgres.start(settings.local_dir))
    if _user_configured(settings.kafka, "bootstrap_servers"):
        typer.echo("kafka: KAFKA_BOOTSTRAP_SERVERS is set; not starting a local broker")
    else:
        _report_kafka(local_kafka.start(settings.local_dir))
    _migrate(settings)


@app.command()
def run(
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            help="human: one short line per event and message; json: the services' JSON lines.",
        ),
    ] = "human",
) -> None:
    """Set everything up and run the whole pipeline in the foreground; Ctrl-C stops it."""
    # Explicit handlers: a shell that starts this in the background hands it SIGINT ignored,
    # and a service manager stops it with SIGTERM; both must stop the stages cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    settings = with_secret_keys(get_settings())
    started_postgres = started_kafka = False
    if not _user_configured(settings.database, "url"):
        postgres = local_postgres.start(settings.local_dir)
        started_postgres = postgres.started
        _report_postgres(postgres)
    if not _user_configured(settings.kafka, "bootstrap_servers"):
        kafka = local_kafka.start(settings.local_dir)
        started_kafka = kafka.started
        _report_kafka(kafka)
    _migrate(settings)
    _report_topics(asyncio.run(ensure_topics(settings)))
    # The stages log JSON unless told otherwise: run directly or supervised, a machine reads
    # them; here a person does.
    # The cron producer runs as a stage of its own, as deployments run it, so that each stage
    # has its own ops port (deploy/prometheus/local.yml scrapes all five).
    pipeline = Pipeline(
        child_env({"TRIGGERLINE_LOG_FORMAT": log_format, "TRIGGERLINE_CRON_ENABLED": "false"})
    )
    try:
        pipeline.start()
        pipeline.wait_ready(f"http://{settings.ingest.host}:{settings.ingest.port}")
        typer.secho(
            "triggerline: ready; webhooks go to "
            f"{settings.registry.public_base_url}/webhooks/<trigger id>",
            fg=typer.colors.GREEN,
        )
        pipeline.wait()
    except KeyboardInterrupt:
        typer.echo("triggerline: stopping")
    finally:
        # A second Ctrl-C must not cut the orderly stop short; stop() force-kills at its deadline.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        pipeline.stop()
        # Leave services running that were running before; stop what this command started.
        if started_kafka:
            local_kafka.stop(settings.local_dir)
        if started_postgres:
            local_postgres.stop(settings.local_dir)


@topics_app.command("ensure")
def topics_ensure() -> None:
    """Create the catalogue's missing topics and report drift in existing ones."""
    _report_topics(asyncio.run(ensure_topics(get_settings())))


@topics_app.command("manifest")
def topics_manifest(
    cluster: Annotated[
        str, typer.Option(help="The Strimzi Kafka cluster: the topics' strimzi.io/cluster label.")
    ],
    output: Annotated[
        Path | None, typer.Option(help="Write the manifest to this file instead of printing it.")
    ] = None,
) -> None:
    """Print the catalogue as Strimzi KafkaTopic resources, as these settings deploy it
    (the topics `topics ensure` would create)."""
    manifest = kafka_topics_yaml(get_settings(), cluster)
    if output is None:
        typer.echo(manifest, nl=False)
    else:
        output.write_text(manifest)
        typer.echo(f"topics: wrote {output}")


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="Catalogue topic, e.g. delivery-log.")],
    limit: Annotated[int, typer.Option(help="Stop after this many records.")] = 20,
) -> None:
    """Print a catalogue topic's records from the beginning, one JSON object per line."""
    spec = next((s for s in CATALOGUE if s.suffix == topic), None)
    if spec is None:
        names = ", ".join(s.suffix for s in CATALOGUE)
        raise typer.BadParameter(f"unknown topic {topic!r}; the catalogue has {names}")
    for line in asyncio.run(read_topic(get_settings(), spec, limit)):
        typer.echo(line)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print it as one JSON object.")] = False,
) -> None:
    """The pipeline on one screen: Kafka and PostgreSQL reachable, topics and their drift from
    the catalogue, consumer groups' members and lag per partition, the cron leader, the relay
    backlog, open circuits and dead letters; what the console's ops page shows. Exits 1 when
    Kafka or PostgreSQL does not answer."""
    found = asyncio.run(read_status(get_settings()))
    typer.echo(orjson.dumps(status_json(found)).decode() if as_json else format_status(found))
    if not found.reachable:
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop the local Kafka broker and PostgreSQL cluster."""
    kafka_stop()
    postgres_stop()


@app.command()
def migrate() -> None:
    """Apply the schema migrations that the database lacks."""
    _migrate(get_settings())


@kafka_app.command("start")
def kafka_start() -> None:
    """Start the local broker, fetching it from Maven Central on first use."""
    _report_kafka(local_kafka.start(get_settings().local_dir))


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the local broker."""
    stopped = local_kafka.stop(get_settings().local_dir)
    typer.echo("kafka: stopped" if stopped else "kafka: not running")


@postgres_app.command("start")
def postgres_start() -> None:
    """Start the local cluster, installing and initialising it on first use."""
    _report_postgres(local_postgres.start(get_settings().local_dir))


@postgres_app.command("stop")
def postgres_stop() -> None:
    """Stop the local cluster."""
    stopped = local_postgres.stop(get_settings().local_dir)
    typer.echo("postgres: stopped" if stopped else "postgres: not running")


def main() -> None:
    # Progress from the deploy modules (fetching, formatting, starting) goes to stderr.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    deploy_logger = logging.getLogger("deploy")
    deploy_logger.addHandler(handler)
    deploy_logger.setLevel(logging.INFO)
    # Commands say in their own words what failed; the Kafka client would otherwise print a
    # line for every retry (a missing topic, a refused connection) through logging's fallback.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        app()
    except USER_ERRORS as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        sys.exit(1)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _user_configured(section: BaseSettings, field: str) -> bool:
    # Fields set from the environment count as set; defaults point at the local services.
    return field in section.model_fields_set


def _migrate(settings: Settings) -> None:
    applied = apply_migrations(settings.database.url.get_secret_value())
    if applied:
        typer.echo(f"migrations: applied {', '.join(applied)}")
    else:
        typer.echo("migrations: schema is up to date")


def _report_topics(reports: list[TopicReport]) -> None:
    for report in reports:
        if report.created:
            typer.echo(f"topic {report.name}: created")
        elif report.drift:
            typer.secho(
                f"topic {report.name}: drift: {'; '.join(report.drift)}", fg=typer.colors.YELLOW
            )
        else:
            typer.echo(f"topic {report.name}: matches the catalogue")


def _report_kafka(kafka: LocalKafka) -> None:
    if kafka.found_listening is not None:
        typer.echo(
            f"kafka: using the broker already listening at {kafka.bootstrap_servers}, "
            f"{kafka.found_listening}; not started from this checkout, so not stopped from it"
        )
        return
    state = "started" if kafka.started else "already running"
    typer.echo(f"kafka: {state} at {kafka.bootstrap_servers} (pid {kafka.pid}); log: {kafka.log}")


def _report_postgres(postgres: LocalPostgres) -> None:
    if postgres.found_listening is not None:
        typer.echo(
            f"postgres: using the PostgreSQL already listening at {postgres.database_url}, "
            f"{postgres.found_listening}; not started from this checkout, so not stopped from it"
        )
        return
    state = "started" if postgres.started else "already running"
    typer.echo(f"postgres: {state} at {postgres.database_url}; log: {postgres.log}")


if __name__ == "__main__":
    main()
