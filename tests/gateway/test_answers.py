"""The answers the routes write as orjson bytes keep to the models the document is
generated from (gateway/answers.py): each answer of each route, in its good and bad
outcomes, over real shard processes, read back through its model (unknown keys refused)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel
from starlette.testclient import TestClient

from gateway.answers import (
    Aggregate,
    FaultAdded,
    FaultListing,
    FaultRemoved,
    FaultsCleared,
    Health,
    Readiness,
    ScenarioPlan,
)
from shardstack_kernel.problem import Problem
from shardstack_kernel.topology import striped_zones
from tests.support import ADMIN, GatewayFactory, StartShard

SHARDS = 3
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def gateway(make_gateway: GatewayFactory, start_shard: StartShard) -> Iterator[TestClient]:
    zones = striped_zones(SHARDS, 2)
    urls = [start_shard(index, "fixed:1", zone=zones[index]).url for index in range(SHARDS)]
    with make_gateway(urls, shard_zones=",".join(zones)) as client:
        yield client
        client.delete("/admin/faults", headers=ADMIN)


def _reads_as(response: httpx.Response, status: int, model: type[BaseModel]) -> BaseModel:
    assert response.status_code == status, response.text
    return model.model_validate_json(response.content)


def test_aggregates_complete_partial_and_failed(gateway: TestClient) -> None:
    complete = _reads_as(gateway.get("/api/aggregate?data=true"), 200, Aggregate)
    assert isinstance(complete, Aggregate)
    assert complete.status == "complete"
    assert [entry.zone for entry in complete.shards] == ["z0", "z1", "z0"]
    fault = {"kind": "error", "status": 503, "shards": "1", "id": "one-down"}
    assert gateway.post("/admin/faults", json=fault, headers=ADMIN).status_code == 201
    try:
        partial = _reads_as(gateway.get("/api/aggregate?shards=2-0"), 200, Aggregate)
        assert isinstance(partial, Aggregate)
        assert (partial.status, partial.ok, partial.failed) == ("partial", 2, 1)
        failed = _reads_as(gateway.get("/api/aggregate?min_ok=3"), 502, Aggregate)
        assert isinstance(failed, Aggregate)
        assert failed.status == "failed"
    finally:
        gateway.delete("/admin/faults/one-down", headers=ADMIN)


def test_health_and_readiness(
    gateway: TestClient, make_gateway: GatewayFactory, start_shard: StartShard
) -> None:
    _reads_as(gateway.get("/healthz"), 200, Health)
    ready = _reads_as(gateway.get("/readyz"), 200, Readiness)
    assert isinstance(ready, Readiness)
    assert ready.zone_mismatch == []
    # A shard that does not say its zone, and one that is not there.
    urls = [start_shard(SHARDS, "fixed:1").url, "http://127.0.0.1:9"]
    with make_gateway(urls, shard_zones="z0,z1") as elsewhere:
        not_ready = _reads_as(elsewhere.get("/readyz"), 503, Readiness)
    assert isinstance(not_ready, Readiness)
    assert [shard.root for shard in not_ready.down] == [1]
    assert not_ready.zone_mismatch is not None
    assert [(m.shard.root, m.shard_says) for m in not_ready.zone_mismatch] == [(0, None)]


def test_faults_added_listed_removed_and_cleared(gateway: TestClient) -> None:
    fault = {"kind": "latency", "latency": "fixed:1", "id": "kept", "shards": [0, 2]}
    added = _reads_as(gateway.post("/admin/faults", json=fault, headers=ADMIN), 201, FaultAdded)
    assert isinstance(added, FaultAdded)
    again = gateway.post("/admin/faults", json={**fault, "shards": "all"}, headers=ADMIN)
    conflict = _reads_as(again, 409, FaultAdded)
    assert isinstance(conflict, FaultAdded)
    assert [entry.status for entry in conflict.shards] == ["failed", "added", "failed"]
    listing = _reads_as(gateway.get("/admin/faults", headers=ADMIN), 200, FaultListing)
    assert isinstance(listing, FaultListing)
    assert listing.active == 3
    removed = _reads_as(gateway.delete("/admin/faults/kept", headers=ADMIN), 200, FaultRemoved)
    assert isinstance(removed, FaultRemoved)
    assert [shard.root for shard in removed.removed_from] == [0, 1, 2]
    cleared = _reads_as(gateway.delete("/admin/faults", headers=ADMIN), 200, FaultsCleared)
    assert isinstance(cleared, FaultsCleared)
    assert cleared.cleared == 0


def test_a_scenario_plan(gateway: TestClient) -> None:
    text = (ROOT / "scenarios" / "zone-brownout.yaml").read_text()
    response = gateway.post("/admin/scenarios/plan", json={"text": text}, headers=ADMIN)
    plan = _reads_as(response, 200, ScenarioPlan)
    assert isinstance(plan, ScenarioPlan)
    assert plan.steps


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/aggregate?timeout_ms=0", 422),
        ("GET", "/api/aggregate?shards=9", 422),
        ("GET", "/admin/faults", 401),
        ("DELETE", "/admin/faults/absent", 404),
        ("PUT", "/api/aggregate", 405),
    ],
)
def test_problems(gateway: TestClient, method: str, path: str, status: int) -> None:
    headers = {} if status == 401 else ADMIN
    response = gateway.request(method, path, headers=headers)
    assert response.headers["content-type"] == "application/problem+json"
    _reads_as(response, status, Problem)
