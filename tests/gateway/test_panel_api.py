"""What the browser panel reads and asks, in process over real shard processes: the state
snapshot agrees with /metrics, shows health and faults, and a scenario file is planned
for these shards without changing anything."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from starlette.testclient import TestClient

from gateway.panel import MAX_AGE_S
from shardstack.bench.exposition import Samples
from tests.support import ADMIN, HOST, GatewayFactory, StartShard, assert_problem, free_port


@pytest.fixture
def gateway(make_gateway: GatewayFactory, start_shard: StartShard) -> Iterator[TestClient]:
    """Shards 0 and 1 answer; nothing listens for shard 2."""
    urls = [start_shard(shard_id, "fixed:1").url for shard_id in range(2)]
    with make_gateway([*urls, f"http://{HOST}:{free_port()}"], breaker_failures=0) as client:
        yield client


def _scraped(gateway: TestClient) -> Samples:
    return Samples.parse(gateway.get("/metrics").text)


def test_the_state_holds_what_metrics_says_and_each_shards_health_and_faults(
    gateway: TestClient,
) -> None:
    for _ in range(3):
        assert gateway.get("/api/aggregate").status_code == 200
    added = gateway.post(
        "/admin/faults",
        json={"kind": "latency", "latency": "fixed:5", "id": "slow-one", "shards": [1]},
        headers=ADMIN,
    )
    assert added.status_code == 201
    state = gateway.get("/ui/state", headers=ADMIN).json()
    scraped = _scraped(gateway)

    figures = state["gateway"]
    assert figures["aggregates"]["partial"] == scraped.get(
        "gateway_aggregate_requests_total", status="partial"
    )
    assert figures["semaphore_capacity"] == scraped.get("gateway_semaphore_capacity")
    latency = figures["latency"]
    assert len(latency) == len(state["buckets"]) + 1  # the +Inf bucket last
    assert latency[-1] == 3
    assert latency == sorted(latency)  # running counts

    shards = {shard["id"]: shard for shard in state["shards"]}
    assert [shards[i]["up"] for i in range(3)] == [True, True, False]
    assert shards[0]["calls"]["ok"] == 3
    assert shards[2]["calls"]["unreachable"] == 3
    assert [fault["id"] for fault in shards[1]["faults"]] == ["slow-one"]
    assert shards[0]["faults"] == []
    assert shards[2]["faults"] is None  # its admin port does not answer either
    assert shards[0]["latency"][-1] == 3


def test_the_shards_faults_are_shown_only_to_the_admin_token(gateway: TestClient) -> None:
    added = gateway.post(
        "/admin/faults",
        json={"kind": "error", "status": 503, "id": "secret-one", "shards": [0]},
        headers=ADMIN,
    )
    assert added.status_code == 201
    public = gateway.get("/ui/state")
    assert public.status_code == 200
    assert public.json()["faults_shown"] is False
    assert [shard["faults"] for shard in public.json()["shards"]] == [None, None, None]
    assert "secret-one" not in public.text
    # A wrong token is refused, as GET /admin/faults refuses it.
    assert_problem(gateway.get("/ui/state", headers={"authorization": "Bearer wrong"}), 401)
    shown = gateway.get("/ui/state", headers=ADMIN).json()
    assert shown["faults_shown"] is True
    assert [fault["id"] for fault in shown["shards"][0]["faults"]] == ["secret-one"]


def test_polls_share_one_reading_of_the_shards_and_keep_their_connections(
    make_gateway: GatewayFactory, start_shard: StartShard
) -> None:
    shard = start_shard(0, "fixed:1")
    with make_gateway([shard.url]) as gateway:
        before = _admin_requests(shard.admin_url)
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda _: gateway.get("/ui/state", headers=ADMIN), range(64)))
        assert {answer.status_code for answer in answers} == {200}
        # 64 polls at once: one reading (two admin calls), not 64; a loaded machine may
        # spread them over a few readings, each at most MAX_AGE_S apart.
        asked = _admin_requests(shard.admin_url) - before - 1  # less this scrape
        assert 2 <= asked <= 8
        # Readings apart in time take the connections the last ones left open.
        for _ in range(4):
            time.sleep(MAX_AGE_S + 0.1)
            assert gateway.get("/ui/state", headers=ADMIN).status_code == 200
        closed = [
            connection
            for connection in psutil.net_connections("tcp")
            if connection.raddr
            and connection.raddr.port == shard.admin_port
            and connection.status == psutil.CONN_TIME_WAIT
        ]
        assert len(closed) <= 2  # a connection past its keep-alive; never one per call


def _admin_requests(admin_url: str) -> float:
    samples = Samples.parse(httpx.get(f"{admin_url}/metrics").text)
    assert samples.exported("shard_admin_requests_total")
    return samples.total("shard_admin_requests_total")


def test_the_page_is_public_and_strict_and_its_assets_ship(gateway: TestClient) -> None:
    page = gateway.get("/ui")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'id="grid"' in page.text
    for asset in ("panel.js", "panel.css", "vendor/uplot/uPlot.iife.min.js"):
        assert gateway.get(f"/ui/assets/{asset}").status_code == 200
    assert gateway.get("/ui/assets/missing.js").status_code == 404


SCENARIO = """name: Two Steps
seed: 3
steps:
  - {at: 2s, shards: {random: 2}, inject: {kind: error, status: 503}, for: 10s}
  - {at: 0.5s, shards: 0-1, inject: {kind: latency, latency: "fixed:200"}}
"""


def test_a_scenario_is_planned_for_these_shards_and_nothing_is_injected(
    gateway: TestClient,
) -> None:
    planned = gateway.post("/admin/scenarios/plan", json={"text": SCENARIO}, headers=ADMIN)
    assert planned.status_code == 200, planned.text
    plan = planned.json()
    assert plan["name"] == "Two Steps"
    assert [step["at_s"] for step in plan["steps"]] == [0.5, 2.0]
    assert [step["fault"]["id"] for step in plan["steps"]] == ["two-steps-2", "two-steps-1"]
    assert plan["steps"][0]["shards"] == [0, 1]
    assert len(plan["steps"][1]["shards"]) == 2
    assert plan["end_s"] == 12.0
    assert (
        gateway.post("/admin/scenarios/plan", json={"text": SCENARIO}, headers=ADMIN).json() == plan
    )
    listing = gateway.get("/admin/faults", headers=ADMIN).json()
    assert listing["active"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"text": "name: x\nsteps:\n  - {at: 0s, shards: 0-7, inject: {kind: error}}\n"},
            "steps.0.shards",
        ),
        ({"text": "name: x\nsteps: [\n"}, "text"),
        ({"text": ""}, "text"),
        ({"text": "- just a list"}, "text"),
        ({"file": "name: x"}, "body"),
        # What a scenario never needs and would cost a worker its memory or its time.
        ({"text": "a: &a [x, x]\nb: &b [*a, *a]\nname: x\n"}, "text"),
        ({"text": "name: x\nseed: " + "9" * 5000 + "\nsteps: []\n"}, "text"),
        ({"text": "name: x\nsteps: " + "[" * 64 + "]" * 64 + "\n"}, "text"),
    ],
)
def test_a_bad_scenario_is_422_naming_the_field(
    gateway: TestClient, body: dict[str, str], field: str
) -> None:
    answer = gateway.post("/admin/scenarios/plan", json=body, headers=ADMIN)
    assert_problem(answer, 422, [field])


def test_planning_needs_the_admin_token(gateway: TestClient) -> None:
    answer = gateway.post("/admin/scenarios/plan", json={"text": SCENARIO})
    assert_problem(answer, 401)
