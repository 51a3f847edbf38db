"""Shards that do not answer, as the gateway meets them: one that accepts connections and
never speaks keeps /readyz from saying ready (within its timeout), and a fault that some
shards could not take is a 502 naming them, while the others keep it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support import ADMIN, HOST, GatewayFactory, StartShard, free_port_block


@pytest.fixture
def mute_url() -> Iterator[str]:
    """A listener that accepts connections into its backlog and never answers."""
    with socket.socket() as mute:
        mute.bind((HOST, 0))
        mute.listen(64)
        yield f"http://{HOST}:{mute.getsockname()[1]}"


def test_readyz_names_a_hung_shard_within_its_timeout(
    make_gateway: GatewayFactory, start_shard: StartShard, mute_url: str
) -> None:
    live = start_shard(0, "fixed:0").url
    with make_gateway([live, mute_url], ready_timeout_ms=300) as gateway:
        started = time.monotonic()
        ready = gateway.get("/readyz")
        took_s = time.monotonic() - started
    assert ready.status_code == 503
    assert ready.json() == {"status": "not_ready", "shards": 2, "down": [1]}
    assert took_s < 3.0  # the 300 ms check, with room for a loaded machine


def test_a_fault_some_shards_cannot_take_is_a_502_naming_them(
    make_gateway: GatewayFactory, start_shard: StartShard
) -> None:
    live = [start_shard(shard_id, "fixed:0").url for shard_id in range(2)]
    # Nothing listens on the third shard's data or admin port.
    dead = f"http://{HOST}:{free_port_block(2)}"
    with make_gateway([*live, dead]) as gateway:
        added = gateway.post(
            "/admin/faults", json={"kind": "error", "shards": "all"}, headers=ADMIN
        )
        listed = gateway.get("/admin/faults", headers=ADMIN).json()
        gateway.delete("/admin/faults", headers=ADMIN)
    assert added.status_code == 502
    by_shard = {entry["shard"]: entry for entry in added.json()["shards"]}
    assert [by_shard[0]["status"], by_shard[1]["status"]] == ["added", "added"]
    assert by_shard[2]["status"] == "failed"
    assert by_shard[2]["detail"]
    kept = {entry["shard"]: len(entry.get("faults") or []) for entry in listed["shards"]}
    assert (kept[0], kept[1]) == (1, 1)
