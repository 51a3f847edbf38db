"""A real Prometheus started by `shardstack up`, read through its HTTP API while load runs:
every target up, the gateway's limits and aggregate percentiles as PromQL gives them, every
dashboard panel's query answered, and both services' /metrics clean under promtool."""

from __future__ import annotations

import contextlib
import json
import math
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.observe import HeldLoad
from tests.e2e.stack import RunningStack, start_stack, wait_until_up
from tests.support import HOST, free_port, require_binary

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards" / "shardstack.json"
SHARDS = 4
PERMITS = 2  # per worker: each aggregate's four calls run two at a time
SHARD_MS = 200
# Grafana's $__rate_interval at a 1 s scrape interval: four scrapes.
RATE_INTERVAL = "4s"


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("query", query=expr)["result"]
        return result

    def query_range(self, expr: str, seconds: int) -> list[dict[str, Any]]:
        end = time.time()
        data = self._get("query_range", query=expr, start=end - seconds, end=end, step=1)
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for_value(self, expr: str, expected: float, timeout_s: float = 30) -> None:
        self._wait(expr, lambda value: math.isclose(value, expected), f"{expected}", timeout_s)

    def wait_until_positive(self, expr: str, timeout_s: float = 30) -> None:
        self._wait(expr, lambda value: value > 0, "above 0", timeout_s)

    def _wait(
        self, expr: str, holds: Callable[[float], bool], wanted: str, timeout_s: float
    ) -> None:
        """Query until `expr` gives one series whose value `holds` (it may start absent)."""
        deadline = time.monotonic() + timeout_s
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            seen = self.query(expr)
            if len(seen) == 1 and holds(float(seen[0]["value"][1])):
                return
            time.sleep(0.5)
        raise AssertionError(f"{expr}: expected {wanted}, last answer {seen}")

    def _get(self, endpoint: str, **params: object) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/api/v1/{endpoint}",
            params=params,
            timeout=10,
            trust_env=False,  # type: ignore[arg-type]
        )
        body = response.json()
        assert response.status_code == 200, (params, body)
        assert body["status"] == "success", (params, body)
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture(scope="module")
def prometheus_port() -> int:
    require_binary("prometheus")
    return free_port()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, prometheus_port: int) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("stack"),
        "--prometheus-port", str(prometheus_port),
        "--workers", "2",
        "--latency", f"fixed:{SHARD_MS}",
        shards=SHARDS,
        GATEWAY_SEMAPHORE_SIZE=str(PERMITS),
        GATEWAY_PERMIT_WAIT_MS="10000",  # calls queue here by design; none is shed
    )  # fmt: skip
    try:
        wait_until_up(running)
        yield running
    finally:
        running.stop(signal.SIGTERM)


@pytest.fixture(scope="module")
def prometheus(stack: RunningStack, prometheus_port: int) -> Prometheus:
    return Prometheus(f"http://{HOST}:{prometheus_port}")


def test_every_target_is_up(stack: RunningStack, prometheus: Prometheus) -> None:
    expected = {"gateway": 1, "shards": SHARDS, "prometheus": 1}
    deadline = time.monotonic() + 30
    while True:
        up = prometheus.query("up == 1")
        jobs: dict[str, int] = {}
        for series in up:
            jobs[series["metric"]["job"]] = jobs.get(series["metric"]["job"], 0) + 1
        if jobs == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert jobs == expected
    shard_labels = sorted(s["metric"]["shard"] for s in up if s["metric"]["job"] == "shards")
    assert shard_labels == [str(shard) for shard in range(SHARDS)]


def test_promql_sees_the_limits_and_the_aggregate_percentiles(
    stack: RunningStack, prometheus: Prometheus
) -> None:
    # One aggregate at a time: one worker runs its four 200 ms calls two at a time, so
    # two permits and two connections are busy, two calls wait, and every aggregate
    # takes about 400 ms, inside the (0.2, 0.5] bucket.
    with HeldLoad(f"{stack.gateway_url}/api/aggregate", threads=1, max_s=60) as load:
        prometheus.wait_for_value("max_over_time(gateway_semaphore_in_use[10s])", PERMITS)
        prometheus.wait_for_value("max_over_time(gateway_semaphore_waiting[10s])", 2)
        prometheus.wait_for_value(
            'max_over_time(gateway_pool_connections{state="active"}[10s])', PERMITS
        )
        prometheus.wait_for_value("gateway_semaphore_capacity", 2 * PERMITS)
        # All observations in one bucket: histogram_quantile interpolates 0.2 + 0.3 q.
        prometheus.wait_for_value("job:gateway_aggregate_duration_seconds:p99_30s", 0.497)
        prometheus.wait_for_value(
            'status:gateway_aggregate_duration_seconds:p50_30s{status="complete"}', 0.35
        )
    assert set(load.outcomes) == {"200"}, load.outcomes


def test_an_injected_fault_shows_in_the_error_ratio_and_fault_counters(
    stack: RunningStack, prometheus: Prometheus
) -> None:
    # A 500 is not retried, so the aggregates keep the duration the percentile test wants;
    # and the fault is removed at the end, whichever test runs next.
    injected = stack.cli("fault", "inject", "3", "error", "status=500", "--for", "60s")
    assert injected.returncode == 0, injected.stderr
    with _fault_removed(stack), HeldLoad(f"{stack.gateway_url}/api/aggregate", threads=1, max_s=60):
        prometheus.wait_for_value('shard:gateway_shard_requests:error_ratio_30s{shard="0"}', 0)
        prometheus.wait_until_positive('shard:gateway_shard_requests:error_ratio_30s{shard="3"}')
        prometheus.wait_until_positive(
            f'rate(shard_faults_injected_total{{kind="error",shard="3"}}[{RATE_INTERVAL}])'
        )


@contextlib.contextmanager
def _fault_removed(stack: RunningStack) -> Iterator[None]:
    try:
        yield
    finally:
        assert stack.cli("fault", "clear").returncode == 0


def _panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


PANEL_QUERIES = _panel_queries()


def test_every_dashboard_query_returns_data(stack: RunningStack, prometheus: Prometheus) -> None:
    # Its own minute of history, whatever ran before: load, and a failing shard.
    injected = stack.cli("fault", "inject", "2", "error", "status=500", "--for", "30s")
    assert injected.returncode == 0, injected.stderr
    with _fault_removed(stack), HeldLoad(f"{stack.gateway_url}/api/aggregate", threads=1, max_s=60):
        prometheus.wait_until_positive('shard:gateway_shard_requests:error_ratio_30s{shard="2"}')
    empty = []
    for title, expr in PANEL_QUERIES:
        # Grafana's substitutions: the rate interval, and "All" shards.
        query = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$shard", ".*")
        series = prometheus.query_range(query, seconds=60)
        values = [float(value) for one in series for _, value in one["values"]]
        if not any(math.isfinite(value) for value in values):
            empty.append(f"{title}: {query} gave {series}")
    assert not empty, "\n".join(empty)


def test_the_dashboard_variable_lists_every_shard(prometheus: Prometheus) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    [variable] = dashboard["templating"]["list"]
    assert variable["query"]["query"] == "label_values(gateway_shard_requests_total, shard)"
    wanted = [str(shard) for shard in range(SHARDS)]
    # The series exist from the gateway's start; Prometheus has them from its first scrape.
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(
            f"{prometheus.url}/api/v1/label/shard/values",
            params={"match[]": "gateway_shard_requests_total"},
            trust_env=False,
        )
        values = sorted(response.json()["data"], key=int)
        if values == wanted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert values == wanted


@pytest.mark.parametrize("service", ["gateway", "shard"])
def test_promtool_finds_nothing_to_say_about_metrics(stack: RunningStack, service: str) -> None:
    promtool = require_binary("promtool")
    base = stack.gateway_url if service == "gateway" else stack.admin_url(0)
    exposition = httpx.get(f"{base}/metrics", trust_env=False).text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == checked.stderr.strip() == ""
