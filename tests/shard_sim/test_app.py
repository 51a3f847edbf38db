"""The shard's admin app in process: runtime latency control, metrics and health, and its
errors. The data port is a real process's (test_data_port.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from shard_sim.app import create_app
from shard_sim.data import Refused, prepare
from shard_sim.received import KEPT
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
    with _client(latency_dir=tmp_path) as confined:
        (tmp_path / "observed.txt").write_text("3\n4\n")
        answer = confined.put("/admin/latency", json={"model": "empirical", "path": "observed.txt"})
        assert answer.json()["latency"] == {"model": "empirical", "path": "observed.txt"}
        assert confined.get("/admin/latency").json()["spec"] == "empirical:path=observed.txt"


@pytest.mark.parametrize("path", ["/etc/passwd", "/nonexistent/l.txt", "../observed.txt"])
def test_a_latency_file_outside_the_latency_directory_is_refused_alike(
    tmp_path: Path, path: str
) -> None:
    (tmp_path / "observed.txt").write_text("3\n")
    latencies = tmp_path / "latencies"
    latencies.mkdir()
    with _client(latency_dir=latencies) as confined:
        for body in (
            {"model": "empirical", "path": path},
            f"empirical:{path}",  # as the compact form arrives in a fault
        ):
            answer = confined.put("/admin/latency", json=body)
            assert_problem(answer, 422, ["path"])
            assert answer.json()["errors"][0]["reason"] == (
                f"{path!r} is outside the latency directory (SHARD_LATENCY_DIR)"
            )
        fault = {"kind": "latency", "latency": f"empirical:{path}"}
        assert_problem(confined.post("/admin/faults", json=fault), 422)
        assert confined.get("/admin/faults").json()["faults"] == []


def test_the_shipped_latency_files_are_read_by_default(shard: TestClient) -> None:
    for name in ("two-modes.txt", "histogram.txt"):
        answer = shard.put("/admin/latency", json=f"empirical:{name}")
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "percentiles", "p50": 5, "p90": 4}, "p90"),
        ({"model": "percentiles", "p99": 5}, "p50"),
        ({"model": "empirical", "path": "nonexistent.txt"}, "path"),
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


def test_received_counts_the_data_requests_and_keeps_the_last_ids(shard: TestClient) -> None:
    state = shard.app.state.shard  # type: ignore[attr-defined]
    for number in range(KEPT + 6):
        prepare(state, None, None, f"id-{number}", "1" if number % 2 else None)
    with pytest.raises(Refused):
        prepare(state, None, None, "bad id", None)  # refused: not received

    wrong = {"authorization": "Bearer not-the-token-0123456789"}
    assert shard.get("/admin/received", headers=wrong).status_code == 401
    assert shard.delete("/admin/received", headers=wrong).status_code == 401
    received = shard.get("/admin/received").json()
    assert received["calls"] == KEPT + 6
    assert len(received["recent"]) == KEPT
    assert received["recent"][0] == {"request_id": "id-6", "attempt": 0}
    assert received["recent"][-1] == {"request_id": f"id-{KEPT + 5}", "attempt": 1}

    forgotten = shard.delete("/admin/received").json()
    assert forgotten == {"shard": 3, "forgotten": KEPT + 6}
    assert shard.get("/admin/received").json() == {"shard": 3, "calls": 0, "recent": []}
