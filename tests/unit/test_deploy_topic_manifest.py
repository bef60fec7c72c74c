"""deploy/kubernetes/topics.yaml is the topic catalogue as Strimzi KafkaTopics, generated: it
equals what `triggerline topics manifest` writes under the Kubernetes settings, so it cannot drift
from schemas/topics.py, and it holds what `triggerline topics ensure` would create."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.topic_manifest import TopicManifestError, kafka_topics, kafka_topics_yaml
from runtime.settings import Settings
from runtime.topic_catalogue import deployed_catalogue
from schemas.topics import CATALOGUE
from tests.support.deployment import (
    KAFKA_TOPIC_SCHEMA,
    REPO_ROOT,
    TOPICS_MANIFEST,
    config_map_data,
    image_environment,
    settings_under,
    yaml_documents,
)

pytestmark = pytest.mark.unit

REGENERATE = (
    "TRIGGERLINE_TOPIC_REPLICATION_FACTOR=3 .venv/bin/triggerline topics manifest "
    "--cluster {cluster} --output deploy/kubernetes/topics.yaml"
)


def committed_cluster() -> str:
    cluster: str = yaml_documents(TOPICS_MANIFEST)[0]["metadata"]["labels"]["strimzi.io/cluster"]
    return cluster


@pytest.fixture
def kubernetes_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the Kubernetes stages run with: the image's environment and the ConfigMap."""
    return settings_under({**image_environment(), **config_map_data()}, monkeypatch)


def test_the_committed_manifest_is_the_generators_output(kubernetes_settings: Settings) -> None:
    cluster = committed_cluster()

    expected = kafka_topics_yaml(kubernetes_settings, cluster)

    assert TOPICS_MANIFEST.read_text() == expected, (
        "deploy/kubernetes/topics.yaml differs from the catalogue; regenerate it with "
        + REGENERATE.format(cluster=cluster)
    )


def test_it_holds_every_catalogue_topic_as_topics_ensure_would_create_it(
    kubernetes_settings: Settings,
) -> None:
    topics = {topic["metadata"]["name"]: topic["spec"] for topic in yaml_documents(TOPICS_MANIFEST)}
    prefix = kubernetes_settings.topics.prefix

    assert len(topics) == len(CATALOGUE)
    for spec in deployed_catalogue(kubernetes_settings):
        topic = topics[spec.name(prefix)]
        assert topic["partitions"] == spec.partitions
        assert topic["replicas"] == kubernetes_settings.topics.replication_factor
        assert topic["config"] == spec.configs()
    # Three replicas, two of them in sync before a produce is acknowledged.
    assert {topic["config"]["min.insync.replicas"] for topic in topics.values()} == {"2"}


def test_the_stages_reach_the_cluster_the_topics_belong_to(kubernetes_settings: Settings) -> None:
    # Strimzi names a cluster's bootstrap Service `<cluster>-kafka-bootstrap`.
    host = kubernetes_settings.kafka.bootstrap_servers.split(":")[0]

    assert host == f"{committed_cluster()}-kafka-bootstrap"


def kafka_topic_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(KAFKA_TOPIC_SCHEMA.read_text())
    return schema


def test_every_topic_is_a_valid_kafka_topic_resource() -> None:
    validator = jsonschema.Draft202012Validator(kafka_topic_schema())

    errors = [
        f"{topic['metadata']['name']}: {error.message}"
        for topic in yaml_documents(TOPICS_MANIFEST)
        for error in validator.iter_errors(topic)
    ]

    assert errors == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "replicas"), 0),
        (("spec", "partitions"), "6"),
        (("spec", "partiton"), 6),
        (("metadata", "labels"), {"app.kubernetes.io/part-of": "triggerline"}),
    ],
)
def test_the_schema_refuses_what_strimzi_would_refuse_or_ignore(
    path: tuple[str, str], value: object
) -> None:
    topic = yaml_documents(TOPICS_MANIFEST)[0]
    topic[path[0]][path[1]] = value

    assert not jsonschema.Draft202012Validator(kafka_topic_schema()).is_valid(topic)


def test_a_topic_name_kubernetes_cannot_hold_is_kept_in_topic_name() -> None:
    settings = Settings().override(topics__prefix="Team_A")

    [raw, *_] = kafka_topics(settings, "main")

    assert raw["metadata"]["name"] == "team-a.raw-events"
    assert raw["spec"]["topicName"] == "Team_A.raw-events"


def test_a_cluster_name_kubernetes_cannot_hold_is_refused() -> None:
    with pytest.raises(TopicManifestError, match="cluster name"):
        kafka_topics(Settings(), "Main_Cluster")


def test_the_command_writes_the_manifest_for_the_environments_settings(tmp_path: Path) -> None:
    output = tmp_path / "topics.yaml"
    env = {
        **os.environ,
        "TRIGGERLINE_TOPIC_REPLICATION_FACTOR": "5",
        "TRIGGERLINE_PROCESSOR_DEDUPE_WINDOW_S": "600",
    }

    command = ["topics", "manifest", "--cluster", "c1", "--output", str(output)]

    result = subprocess.run(
        [sys.executable, "-c", "from deploy.cli import main; main()", *command],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    topics = {t["metadata"]["name"]: t for t in yaml.safe_load_all(output.read_text())}
    assert {t["spec"]["replicas"] for t in topics.values()} == {5}
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics.values()} == {"c1"}
    # The deduplication changelog keeps two windows.
    changelog = topics["triggerline.processor-dedupe"]["spec"]["config"]
    assert changelog["retention.ms"] == "1200000"
