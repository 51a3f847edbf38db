"""The stack's plan, in process: ports, ids and settings checked before anything starts,
and the processes it describes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shardstack.launcher.plan import GATEWAY_CONFIG, StackConfig, plan
from shardstack_kernel.latency import parse_latency
from shardstack_kernel.validation import InvalidInput

PYTHON = Path(sys.executable)
NOT_EXECUTABLE = Path(__file__)


def _field(config: StackConfig) -> str:
    with pytest.raises(InvalidInput) as caught:
        plan(config)
    return caught.value.errors[0].field


def test_the_default_plan_is_twenty_shards_then_the_gateway() -> None:
    stack = plan(StackConfig())
    names = [spec.name for spec in stack.specs]
    assert names == [f"shard-{index:02d}" for index in range(20)] + ["gateway"]
    assert stack.gateway_process.argv[-2:] == ("-c", GATEWAY_CONFIG)
    assert stack.gateway_process.ports == (("127.0.0.1", 8000),)
    assert stack.shard_specs[3].ports == (("127.0.0.1", 9003), ("127.0.0.1", 10003))
    assert stack.shard_specs[3].env["SHARD_PORT"] == "9003"
    assert stack.gateway.shard_urls[19] == "http://127.0.0.1:9019"
    assert stack.token_generated
    assert {spec.env["SHARDSTACK_ADMIN_TOKEN"] for spec in stack.specs} == {stack.admin_token}


def test_a_shards_only_plan_has_no_gateway_to_start_or_scrape() -> None:
    stack = plan(StackConfig(shards=3, gateway=False, gateway_port=9001, prometheus=PYTHON))
    assert stack.gateway_spec is None
    assert [spec.name for spec in stack.specs] == ["shard-00", "shard-01", "shard-02"]
    assert stack.prometheus is not None
    jobs = [job["job_name"] for job in stack.prometheus.config["scrape_configs"]]
    assert jobs == ["shards", "prometheus"]
    with pytest.raises(ValueError, match="no gateway"):
        _ = stack.gateway_process


def test_one_shards_latency_and_the_seed_reach_that_shard_only() -> None:
    stack = plan(
        StackConfig(shards=3, latency=parse_latency("fixed:5"),
                    shard_latency={1: parse_latency("fixed:500")}, seed=7)
    )  # fmt: skip
    latencies = [parse_latency(spec.env["SHARD_LATENCY"]) for spec in stack.shard_specs]
    assert latencies == [parse_latency(spec) for spec in ("fixed:5", "fixed:500", "fixed:5")]
    assert {spec.env["SHARD_SEED"] for spec in stack.shard_specs} == {"7"}


def test_shards_are_packed_consecutively_and_a_shard_of_its_own_settings_stands_alone() -> None:
    stack = plan(
        StackConfig(shards=7, shards_per_process=3, shard_latency={4: parse_latency("fixed:9")})
    )
    names = [spec.name for spec in stack.shard_specs]
    assert names == ["shards-00-02", "shard-03", "shard-04", "shards-05-06"]
    first = stack.shard_specs[0]
    assert (first.env["SHARD_ID"], first.env["SHARD_PACK"]) == ("0", "3")
    assert (first.env["SHARD_PORT"], first.env["SHARD_ADMIN_PORT"]) == ("9000", "10000")
    assert first.ports == tuple(
        ("127.0.0.1", port) for shard in range(3) for port in (9000 + shard, 10000 + shard)
    )
    assert first.ready_url == "http://127.0.0.1:9002/healthz"  # the last port it opens
    assert stack.shard_specs[2].env["SHARD_LATENCY"] == "fixed:ms=9"
    assert stack.gateway.shard_urls == tuple(f"http://127.0.0.1:{9000 + i}" for i in range(7))


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (StackConfig(shards=3, shards_per_process=4), "--shards-per-process"),
        (StackConfig(shards=3, shards_per_process=0), "--shards-per-process"),
        (StackConfig(shards=20, shard_base_port=65530), "--shard-base-port"),
        (StackConfig(shards=20, gateway_port=9005), "--port"),
        (StackConfig(shards=3, shard_latency={3: parse_latency("fixed:1")}), "--shard-latency"),
        (StackConfig(prometheus=PYTHON, prometheus_port=8000), "--prometheus-port"),
        (StackConfig(prometheus=PYTHON, prometheus_port=9002), "--prometheus-port"),
        (StackConfig(prometheus=NOT_EXECUTABLE), "--prometheus"),
        (StackConfig(shard_base_port=64600), "GATEWAY_SHARD_ADMIN_PORT_OFFSET"),
    ],
)
def test_ports_and_ids_are_checked_before_anything_starts(config: StackConfig, field: str) -> None:
    assert _field(config) == field


def test_a_bad_variable_of_the_services_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_SEMAPHORE_SIZE", "0")
    assert _field(StackConfig()) == "GATEWAY_SEMAPHORE_SIZE"
    monkeypatch.delenv("GATEWAY_SEMAPHORE_SIZE")
    monkeypatch.setenv("SHARD_RECORDS", "lots")
    assert _field(StackConfig()) == "SHARD_RECORDS"


def test_the_operators_token_is_used_and_not_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARDSTACK_ADMIN_TOKEN", "operator-token-0123456789")
    stack = plan(StackConfig(shards=1))
    assert (stack.admin_token, stack.token_generated) == ("operator-token-0123456789", False)


@pytest.mark.parametrize("length", [15, 513])
def test_an_operators_token_must_be_16_to_512_characters(
    monkeypatch: pytest.MonkeyPatch, length: int
) -> None:
    monkeypatch.setenv("SHARDSTACK_ADMIN_TOKEN", "x" * length)
    with pytest.raises(InvalidInput) as caught:
        plan(StackConfig(shards=1))
    [error] = caught.value.errors
    assert error.field == "SHARDSTACK_ADMIN_TOKEN"
    assert f"must be 16 to 512 characters long, not {length}" in error.reason
