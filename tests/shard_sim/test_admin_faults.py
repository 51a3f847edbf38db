"""A real shard's fault routes: the token, bad input that changes nothing, the faults that
act at the HTTP level on its data port, and the counter of applied faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support import ADMIN, ADMIN_TOKEN, StartShard, assert_problem


@dataclass
class Shard:
    """A shard process of its own: its admin port and its data port."""

    admin: httpx.Client
    data: httpx.Client

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        client = self.data if path == "/data" else self.admin
        return client.get(path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.admin.post(path, **kwargs)  # type: ignore[arg-type]

    def put(self, path: str, **kwargs: object) -> httpx.Response:
        return self.admin.put(path, **kwargs)  # type: ignore[arg-type]

    def delete(self, path: str, **kwargs: object) -> httpx.Response:
        return self.admin.delete(path, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def shard(start_shard: StartShard) -> Iterator[Shard]:
    process = start_shard(2)
    with (
        httpx.Client(base_url=process.admin_url, trust_env=False) as admin,
        httpx.Client(base_url=process.url, trust_env=False) as data,
    ):
        yield Shard(admin, data)


def _faults(shard: Shard) -> list[dict[str, object]]:
    response = shard.get("/admin/faults", headers=ADMIN)
    assert response.status_code == 200
    faults: list[dict[str, object]] = response.json()["faults"]
    return faults


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-token-wrong-token"},
        {"authorization": ADMIN_TOKEN},
        {"authorization": f"Basic {ADMIN_TOKEN}"},
    ],
)
def test_admin_routes_need_the_token_and_change_nothing_without_it(
    shard: Shard, headers: dict[str, str]
) -> None:
    shard.post("/admin/faults", json={"kind": "error", "id": "kept"}, headers=ADMIN)
    calls = [
        shard.get("/admin/faults", headers=headers),
        shard.post("/admin/faults", json={"kind": "reset"}, headers=headers),
        shard.delete("/admin/faults/kept", headers=headers),
        shard.delete("/admin/faults", headers=headers),
        shard.put("/admin/latency", json={"model": "fixed", "ms": 9}, headers=headers),
    ]
    for response in calls:
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert [fault["id"] for fault in _faults(shard)] == ["kept"]
    assert shard.get("/admin/latency", headers=ADMIN).json()["spec"] == "fixed:ms=0"


def test_add_list_remove_and_clear(shard: Shard) -> None:
    added = shard.post(
        "/admin/faults",
        json={"kind": "latency", "latency": "fixed:5", "probability": 0.5, "duration_s": 60},
        headers=ADMIN,
    )
    assert added.status_code == 201
    fault = added.json()["fault"]
    assert fault["id"] == "latency-1"
    assert fault["latency"] == "fixed:ms=5"
    assert (fault["probability"], fault["duration_s"]) == (0.5, 60)
    assert 59 < fault["remaining_s"] <= 60
    shard.post("/admin/faults", json={"kind": "error", "id": "e"}, headers=ADMIN)
    assert [entry["id"] for entry in _faults(shard)] == ["latency-1", "e"]

    assert shard.delete("/admin/faults/e", headers=ADMIN).json()["removed"] == ["e"]
    assert_problem(shard.delete("/admin/faults/e", headers=ADMIN), 404)
    assert shard.delete("/admin/faults", headers=ADMIN).json()["cleared"] == 1
    assert _faults(shard) == []


@pytest.mark.parametrize(
    ("body", "status", "fields"),
    [
        ({"kind": "explode"}, 422, ["kind"]),
        ({"kind": "error", "status": 99}, 422, ["status"]),
        ({"kind": "error", "probability": "often"}, 422, ["probability"]),
        ({"kind": "error", "duration_s": 0}, 422, ["duration_s"]),
        ({"kind": "error", "id": "dup"}, 409, None),  # valid, but the id is taken
        ([1, 2], 422, ["body"]),
        ("error", 422, ["body"]),
    ],
)
def test_invalid_fault_is_refused_and_the_faults_stay_as_they_were(
    shard: Shard, body: object, status: int, fields: list[str] | None
) -> None:
    shard.post("/admin/faults", json={"kind": "reset", "id": "dup"}, headers=ADMIN)
    before = _faults(shard)
    assert_problem(shard.post("/admin/faults", json=body, headers=ADMIN), status, fields)
    assert _faults(shard) == before


def test_malformed_and_oversized_bodies_are_refused(shard: Shard) -> None:
    assert_problem(shard.post("/admin/faults", content=b"{nope", headers=ADMIN), 422, ["body"])
    huge = b'{"kind": "error", "body": "' + b"x" * 70_000 + b'"}'
    assert_problem(shard.post("/admin/faults", content=huge, headers=ADMIN), 413)
    assert _faults(shard) == []


def test_error_fault_answers_with_its_status_body_and_retry_after(shard: Shard) -> None:
    shard.post(
        "/admin/faults",
        json={"kind": "error", "status": 429, "retry_after_s": 3, "body": "slow down"},
        headers=ADMIN,
    )
    response = shard.get("/data")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.text == "slow down"
    assert _faults(shard)[0]["applied"] == 1


def test_latency_fault_adds_its_delay(shard: Shard) -> None:
    shard.post("/admin/faults", json={"kind": "latency", "latency": "fixed:30"}, headers=ADMIN)
    assert shard.get("/data").json()["delay_ms"] == pytest.approx(30)


def test_invalid_json_fault_breaks_the_body(shard: Shard) -> None:
    shard.post("/admin/faults", json={"kind": "malformed"}, headers=ADMIN)
    response = shard.get("/data")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_applied_faults_are_counted_by_kind(shard: Shard) -> None:
    shard.post("/admin/faults", json={"kind": "error", "status": 500}, headers=ADMIN)
    for _ in range(3):
        shard.get("/data")
    metrics = shard.get("/metrics").text
    assert 'shard_faults_injected_total{kind="error"} 3.0' in metrics
    assert 'shard_faults_injected_total{kind="reset"} 0.0' in metrics


def test_request_fault_header_needs_the_token(shard: Shard) -> None:
    header = {"x-shardstack-fault": "error status=418"}
    assert_problem(shard.get("/data", headers=header), 401)
    assert shard.get("/data", headers={**header, **ADMIN}).status_code == 418
    assert shard.get("/data").status_code == 200
    bad = {"x-shardstack-fault": "down", **ADMIN}
    assert_problem(shard.get("/data", headers=bad), 422, ["x-shardstack-fault"])
