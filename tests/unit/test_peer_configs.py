"""The peer benchmarks' Benthos build files and configs, generated without Go or Benthos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from msgspec.structs import replace

from benchmarks import processor_workload
from benchmarks.peers.benthos import GO_MOD, MAIN_GO, ensure_benthos, go_env
from benchmarks.peers.bloblang import FILTERS, routing_mapping, trigger_rule
from benchmarks.peers.configs import delivery_config, ingest_config, processing_config
from runtime.settings import Settings

pytestmark = pytest.mark.unit

SLACK_TYPES = '["message", "app_mention", "reaction_added", "team_join"]'


def round_trip(config: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(yaml.safe_dump(config, sort_keys=False))
    assert loaded == config
    return loaded


def test_every_workload_filter_has_a_bloblang_translation() -> None:
    assert [cel for cel, _ in FILTERS] == processor_workload.FILTERS


def test_a_trigger_rule_is_its_allow_list_then_its_filter_and_fails_closed() -> None:
    config = processor_workload.triggers()[3]
    assert trigger_rule(config) == (
        f"({SLACK_TYPES}.contains($event_type) && "
        '($e.text.re_match("(?i)incident|outage|sev[12]"))).catch(false)'
    )
    assert trigger_rule(replace(config, config={})) == "(true).catch(false)"


def test_the_routing_mapping_matches_each_active_trigger_by_id() -> None:
    configs = processor_workload.triggers()
    paused = replace(configs[0], trigger_id="paused-one", status="paused")
    mapping = routing_mapping([*configs, paused])
    for config in configs:
        assert f'  "{config.trigger_id}" => {trigger_rule(config)}\n' in mapping
    assert '"paused-one"' not in mapping
    assert "meta correlation = $correlation" in mapping
    assert "root = deleted()" in mapping


def test_ingest_verifies_the_slack_signature_before_producing_with_acks_all() -> None:
    config = round_trip(ingest_config(brokers="k:9", topic="raw", port=1, ops_port=2, verify=True))
    server = config["input"]["http_server"]
    assert server["address"] == "127.0.0.1:1"
    assert server["path"] == "/webhooks/{trigger_id}"
    assert server["sync_response"]["status"] == "${! @status }"
    verification, switch = config["pipeline"]["processors"]
    check = verification["mapping"]
    assert check.startswith("\nroot = content()\n")
    assert '"v0:" + $timestamp + ":" + content().string()' in check
    assert '"hmac_sha256", env("SLACK_SIGNING_SECRET")' in check
    assert '.encode("hex")' in check
    assert "$presented == $expected" in check
    assert ".abs() <= 300" in check
    [rejected] = switch["switch"]
    assert rejected["check"] == '@slack_verified != "yes"'
    steps = rejected["processors"]
    assert 'meta status = "401"' in steps[0]["mapping"]
    assert steps[1:] == [{"sync_response": {}}, {"mapping": "root = deleted()"}]
    output = config["output"]["kafka_franz"]
    assert output["seed_brokers"] == ["k:9"]
    assert output["topic"] == "raw"
    assert output["key"] == "${! @trigger_id }"
    assert output["idempotent_write"] is True
    assert output["compression"] == "none"
    assert config["http"]["address"] == "127.0.0.1:2"


def test_ingest_without_verification_stores_every_body() -> None:
    config = round_trip(ingest_config(brokers="k:9", topic="raw", port=1, ops_port=2, verify=False))
    assert config["pipeline"]["processors"] == []
    assert config["output"]["kafka_franz"]["idempotent_write"] is True


def test_processing_routes_from_the_raw_topic_keyed_by_correlation_id() -> None:
    configs = processor_workload.triggers()
    config = round_trip(
        processing_config(
            brokers="k:9",
            raw_topic="raw",
            routed_topic="routed",
            group="g",
            ops_port=2,
            configs=configs,
        )
    )
    source = config["input"]["kafka_franz"]
    assert (source["topics"], source["consumer_group"]) == (["raw"], "g")
    assert source["start_from_oldest"] is True
    [mapping] = config["pipeline"]["processors"]
    assert mapping == {"mapping": routing_mapping(configs)}
    output = config["output"]["kafka_franz"]
    assert (output["topic"], output["key"]) == ("routed", "${! @correlation }")
    assert output["idempotent_write"] is True


def test_delivery_posts_with_128_in_flight_and_retries() -> None:
    config = round_trip(
        delivery_config(brokers="k:9", routed_topic="routed", group="g", ops_port=2, url="http://t")
    )
    source = config["input"]["kafka_franz"]
    assert source["topics"] == ["routed"]
    # Above the default 1,024 so that a backlog does not pause every partition.
    assert source["checkpoint_limit"] > 1024
    client = config["output"]["http_client"]
    assert (client["url"], client["verb"]) == ("http://t", "POST")
    assert client["max_in_flight"] == 128
    assert client["retries"] > 0


def test_the_slim_build_requires_the_release_and_imports_four_component_sets() -> None:
    assert "require github.com/benthosdev/benthos/v4 v4.27.0" in GO_MOD
    for name in ("io", "pure", "kafka", "prometheus"):
        assert f'\t_ "github.com/benthosdev/benthos/v4/public/components/{name}"\n' in MAIN_GO
    assert "service.RunCLI(context.Background())" in MAIN_GO


def test_every_go_path_lies_under_the_peers_folder(tmp_path: Path) -> None:
    env = go_env(tmp_path)
    for name in ("GOPATH", "GOMODCACHE", "GOCACHE", "XDG_CONFIG_HOME", "GOENV"):
        assert Path(env[name]).is_relative_to(tmp_path), name
    assert env["GOTOOLCHAIN"] == "local"


def test_a_built_benthos_is_used_as_it_is(tmp_path: Path) -> None:
    built = tmp_path / "peers" / "benthos"
    built.parent.mkdir()
    built.write_bytes(b"")
    assert ensure_benthos(Settings().override(local_dir=tmp_path)) == built
    assert not (tmp_path / "peers" / "src").exists()
