"""The shard's admin app in process: runtime latency control, metrics and health, and its
errors. The data port is a real process's (test_data_port.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from shard_sim.app import create_app
from shard_sim.settings import ShardSettings
from tests.support import ADMIN, ADMIN_TOKEN, assert_problem


def _client(**settings: object) -> TestClient:
    app = create_app(ShardSettings(admin_token=ADMIN_TOKEN, **settings))  # type: ignore[arg-type]
    return TestClient(app, headers=ADMIN)


@pytest.fixture
def shard() -> Iterator[TestClient]:
    with _client(id=3, latency="uniform:0,1", records=4, record_bytes=16) as client:
        yield client


def test_healthz(shard: TestClient) -> None:
    body = shard.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["shard"] == 3
    assert body["pid"] > 0


def test_latency_is_read_and_replaced_at_runtime(shard: TestClient) -> None:
    assert shard.get("/admin/latency").json()["spec"] == "uniform:low_ms=0,high_ms=1"
    response = shard.put("/admin/latency", json={"model": "fixed", "ms": 25})
    assert response.status_code == 200
    assert response.json()["latency"] == {"model": "fixed", "ms": 25.0}
    assert shard.get("/admin/latency").json()["spec"] == "fixed:ms=25"


def test_measured_latencies_are_set_at_runtime(shard: TestClient, tmp_path: Path) -> None:
    body = {"model": "percentiles", "p50": 5, "p99.9": 300, "p90": 20}
    answer = shard.put("/admin/latency", json=body).json()
    assert answer["latency"] == {"model": "percentiles", "p50": 5.0, "p90": 20.0, "p99.9": 300.0}
    assert answer["spec"] == "percentiles:p50=5,p90=20,p99.9=300"
    observed = tmp_path / "observed.txt"
    observed.write_text("3\n4\n")
    answer = shard.put("/admin/latency", json={"model": "empirical", "path": str(observed)})
    assert answer.json()["latency"] == {"model": "empirical", "path": str(observed)}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "percentiles", "p50": 5, "p90": 4}, "p90"),
        ({"model": "percentiles", "p99": 5}, "p50"),
        ({"model": "empirical", "path": "/nonexistent/latencies.txt"}, "path"),
        ({"model": "lognormal", "p50_ms": 50, "p99_ms": 5}, "p99_ms"),
        ({"model": "fixed", "ms": -3}, "ms"),
        ({"model": "warp", "ms": 1}, "model"),
        ({"model": "fixed", "ms": "soon"}, "ms"),
        ({"model": "fixed", "ms": 1, "jitter": 2}, "jitter"),
        ([1, 2], "model"),
    ],
)
def test_invalid_latency_is_422_naming_the_field_and_changes_nothing(
    shard: TestClient, body: object, field: str
) -> None:
    assert_problem(shard.put("/admin/latency", json=body), 422, [field])
    assert shard.get("/admin/latency").json()["spec"] == "uniform:low_ms=0,high_ms=1"


def test_malformed_and_oversized_bodies_are_refused(shard: TestClient) -> None:
    assert_problem(shard.put("/admin/latency", content=b"{not json"), 422, ["body"])
    assert_problem(shard.put("/admin/latency", content=b" " * (65 * 1024)), 413)
    assert shard.get("/admin/latency").json()["spec"] == "uniform:low_ms=0,high_ms=1"


def test_unknown_route_and_method_answer_in_the_problem_shape(shard: TestClient) -> None:
    assert_problem(shard.get("/nope"), 404)
    assert_problem(shard.get("/data"), 404)  # the data port's, not the admin port's
    assert_problem(shard.post("/admin/latency"), 405)
