"""The topic catalogue as Strimzi KafkaTopic resources, for clusters whose topics an operator owns.

`triggerline topics ensure` creates the catalogue's topics through Kafka's admin API. On
Kubernetes with Strimzi the topic operator owns topics instead, and it reads KafkaTopic
resources: this writes one per catalogue topic, with the partitions, replication factor and
configs that `topics ensure` would set under the same settings (`deployed_catalogue`), so the
two ways of creating topics cannot disagree. deploy/kubernetes/topics.yaml is its output for the
settings in deploy/kubernetes/config.yaml, and a unit test keeps it so.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from runtime.settings import Settings
from runtime.topic_catalogue import deployed_catalogue

API_VERSION = "kafka.strimzi.io/v1beta2"
CLUSTER_LABEL = "strimzi.io/cluster"
HEADER = (
    "# Generated from the topic catalogue (schemas/topics.py) by `triggerline topics manifest`;\n"
    "# do not edit: change the catalogue or the settings and generate it again.\n"
)
# A Kubernetes object name (RFC 1123 subdomain): what a KafkaTopic's metadata.name must be.
_RESOURCE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_RESOURCE_NAME_MAX = 253


class TopicManifestError(ValueError):
    """The settings give topic names or a cluster name Kubernetes cannot hold."""


def kafka_topics(settings: Settings, cluster: str) -> list[dict[str, Any]]:
    """One KafkaTopic per catalogue topic, as these settings deploy it, for Strimzi cluster
    `cluster` (its `strimzi.io/cluster` label)."""
    _check_resource_name(cluster, "cluster name")
    resources = []
    for spec in deployed_catalogue(settings):
        name = spec.name(settings.topics.prefix)
        # Kafka topic names may hold `_` and capitals, Kubernetes names may not; Strimzi then
        # takes the topic's name from spec.topicName.
        resource_name = re.sub(r"[^a-z0-9.-]", "-", name.lower())
        _check_resource_name(resource_name, f"resource name for topic {name!r}")
        topic_spec: dict[str, Any] = {
            "partitions": spec.partitions,
            "replicas": settings.topics.replication_factor,
            "config": spec.configs(),
        }
        if resource_name != name:
            topic_spec["topicName"] = name
        resources.append(
            {
                "apiVersion": API_VERSION,
                "kind": "KafkaTopic",
                "metadata": {
                    "name": resource_name,
                    "labels": {
                        CLUSTER_LABEL: cluster,
                        "app.kubernetes.io/part-of": "triggerline",
                    },
                },
                "spec": topic_spec,
            }
        )
    return resources


def kafka_topics_yaml(settings: Settings, cluster: str) -> str:
    """`kafka_topics` as one YAML stream, each resource its own document, after `HEADER`."""
    documents = yaml.safe_dump_all(
        kafka_topics(settings, cluster),
        explicit_start=True,
        sort_keys=False,
        default_flow_style=False,
    )
    return HEADER + documents


def _check_resource_name(name: str, what: str) -> None:
    if len(name) > _RESOURCE_NAME_MAX or not _RESOURCE_NAME.match(name):
        raise TopicManifestError(
            f"{what} {name!r} is not a Kubernetes resource name (lower-case letters, digits, "
            f"'-' and '.', at most {_RESOURCE_NAME_MAX} characters)"
        )
