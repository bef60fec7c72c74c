"""How the deployed catalogue protects acknowledged records: `min.insync.replicas` follows the
replication factor, so acks=all means "on two brokers" wherever there are two."""

from __future__ import annotations

import pytest

from runtime.settings import Settings
from runtime.topic_catalogue import TopicCatalogueError, deployed_catalogue, min_insync_replicas

pytestmark = pytest.mark.unit


def settings(factor: int, in_sync: int | None = None) -> Settings:
    return Settings().override(
        topics__replication_factor=factor, topics__min_insync_replicas=in_sync
    )


@pytest.mark.parametrize(("factor", "expected"), [(1, 1), (2, 2), (3, 2), (5, 2)])
def test_unset_it_is_two_where_the_replication_allows(factor: int, expected: int) -> None:
    assert min_insync_replicas(settings(factor)) == expected


def test_every_deployed_topic_carries_it() -> None:
    catalogue = deployed_catalogue(settings(3))

    assert {spec.configs()["min.insync.replicas"] for spec in catalogue} == {"2"}


def test_an_explicit_value_within_the_replication_is_kept() -> None:
    assert min_insync_replicas(settings(3, in_sync=3)) == 3
    assert min_insync_replicas(settings(3, in_sync=1)) == 1


def test_more_than_the_replication_is_refused_before_any_topic_exists() -> None:
    with pytest.raises(TopicCatalogueError, match="MIN_INSYNC_REPLICAS=4 exceeds"):
        deployed_catalogue(settings(3, in_sync=4))
