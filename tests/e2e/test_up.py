"""`shardstack up` end to end: 20 shard processes, gunicorn with 2 workers, real faults."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from shardstack.launcher.fleet_file import FLEET_FILE_NAME
from shardstack.testing import Fleet
from tests.e2e.observe import scrape
from tests.e2e.stack import (
    RunningStack,
    StartStack,
    alive,
    cmdline,
    descendants,
    direct_children,
    get,
    gunicorn_workers,
    listening,
    running_stack,
    site_hook,
)
from tests.support import HOST, free_port, require_binary

QUICK = "uniform:1,4"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("stack"), "--latency", QUICK, shards=20) as up:
        yield up


def _set_latency(stack: RunningStack, shard_id: int, model: dict[str, object]) -> None:
    url = f"{stack.admin_url(shard_id)}/admin/latency"
    httpx.put(url, json=model, headers=stack.admin_headers(), trust_env=False).raise_for_status()


def test_aggregate_answers_with_all_20_shards(stack: RunningStack) -> None:
    response = get(f"{stack.gateway_url}/api/aggregate")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "complete"
    assert (body["ok"], body["failed"]) == (20, 0)
    assert [shard["shard"] for shard in body["shards"]] == list(range(20))
    assert all(shard["status"] == "ok" for shard in body["shards"])


def test_gateway_is_gunicorn_with_two_workers_beside_20_shards(stack: RunningStack) -> None:
    top = direct_children(stack.process.pid)
    shards = [pid for pid in top if "-m shard_sim" in cmdline(pid)]
    assert len(shards) == 20
    workers = gunicorn_workers(stack)
    assert len(workers) == 2
    # Whoever answers is one of those workers.
    with ThreadPoolExecutor(8) as pool:
        pids = set(pool.map(lambda _: get(f"{stack.gateway_url}/healthz").json()["pid"], range(40)))
    assert pids <= set(workers)


def test_slow_shard_is_cut_at_the_deadline(stack: RunningStack) -> None:
    _set_latency(stack, 7, {"model": "fixed", "ms": 5000})
    try:
        started = time.perf_counter()
        response = get(f"{stack.gateway_url}/api/aggregate", timeout_ms=500)
        took_ms = (time.perf_counter() - started) * 1000
    finally:
        _set_latency(stack, 7, {"model": "uniform", "low_ms": 1, "high_ms": 4})
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "partial"
    assert body["ok"] == 19
    assert body["shards"][7]["status"] == "timeout"
    assert body["elapsed_ms"] < 500 + 100
    assert took_ms < 500 + 400  # generous: a loaded 2-core machine


def test_shard_killed_mid_request_yields_partial_and_the_stack_keeps_running(
    start: StartStack,
) -> None:
    # A stack of its own: the shard it kills stays dead.
    stack = start("--latency", QUICK, shards=6)
    pid = get(f"{stack.shard_url(5)}/healthz").json()["pid"]
    denied_before = scrape(stack.gateway_url).total("gateway_retries_denied_total")
    _set_latency(stack, 5, {"model": "fixed", "ms": 900})
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(get, f"{stack.gateway_url}/api/aggregate", timeout_ms=3000)
        time.sleep(0.4)
        os.kill(pid, signal.SIGKILL)
        during = in_flight.result().json()
    assert during["status"] == "partial"
    assert during["ok"] == stack.shards - 1
    # A reset may be retried (a read, and a broken connection): the retry finds no shard.
    killed = during["shards"][5]
    if killed.get("attempts") == 2:
        # The retry finds no listener, or, sent while the dying process still had its
        # listening socket (the kernel closes a killed process's descriptors one by one),
        # a connection that is then reset.
        if killed["status"] == "unreachable":
            assert "first try: reset" in killed["detail"]
        else:
            assert killed["status"] == "reset"
    else:
        # Not retried only when the worker's retry budget was spent.
        assert killed["status"] == "reset"
        denied = scrape(stack.gateway_url).total("gateway_retries_denied_total")
        assert denied > denied_before

    after = get(f"{stack.gateway_url}/api/aggregate").json()
    assert after["status"] == "partial"
    assert after["shards"][5]["status"] == "unreachable"
    assert stack.process.poll() is None
    deadline = time.monotonic() + 10
    while "shard-05 was killed by SIGKILL" not in stack.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "shard-05 was killed by SIGKILL" in stack.stderr()


def test_packed_shards_serve_faults_alike_and_a_kill_takes_the_whole_pack(
    start: StartStack,
) -> None:
    stack = start("--latency", QUICK, "--shards-per-process", "2", shards=4)
    shard_processes = [pid for pid in descendants(stack.process.pid) if "shard_sim" in cmdline(pid)]
    assert len(shard_processes) == 2
    assert "4 shards in 2 processes" in stack.stderr()
    body = get(f"{stack.gateway_url}/api/aggregate").json()
    assert (body["status"], body["ok"]) == ("complete", 4)

    injected = stack.cli("fault", "inject", "1,2", "error", "status=503")
    assert injected.returncode == 0, injected.stderr
    statuses = [
        entry["status"] for entry in get(f"{stack.gateway_url}/api/aggregate").json()["shards"]
    ]
    assert statuses == ["ok", "error", "error", "ok"]
    assert stack.cli("fault", "clear").returncode == 0

    os.kill(get(f"{stack.shard_url(3)}/healthz").json()["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (
        "shards-02-03 was killed by SIGKILL" not in stack.stderr() and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert "shards-02-03 was killed by SIGKILL" in stack.stderr()
    after = get(f"{stack.gateway_url}/api/aggregate").json()
    assert [entry["status"] for entry in after["shards"]] == [
        "ok",
        "ok",
        "unreachable",
        "unreachable",
    ]


def test_capacity_reaches_every_shard_and_the_gateway_sees_its_refusals(
    start: StartStack,
) -> None:
    stack = start("--latency", "fixed:300", "--capacity", "workers=1,overflow=429", shards=2)
    for shard_id in range(2):
        admin = f"{stack.admin_url(shard_id)}/admin/capacity"
        state = httpx.get(admin, headers=stack.admin_headers(), trust_env=False)
        assert state.json()["spec"] == "workers=1,queue=0,overflow=429,order=fifo,retry_after_s=1"
    # Two aggregates at once: each shard serves one and refuses the other (429 is not
    # retried), so one aggregate is complete and the other sees both shards refuse.
    url = f"{stack.gateway_url}/api/aggregate?timeout_ms=2000"
    with ThreadPoolExecutor(2) as pool:
        bodies = [answer.json() for answer in pool.map(lambda _: get(url), range(2))]
    details = sorted(entry.get("detail", "ok") for body in bodies for entry in body["shards"])
    assert details == ["HTTP 429", "HTTP 429", "ok", "ok"], bodies


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_signal_ends_every_process_and_frees_every_port(
    start: StartStack, sig: signal.Signals
) -> None:
    stack = start()
    processes = descendants(stack.process.pid)
    assert len(processes) == 3 + 1 + 2  # shards, gunicorn master, workers
    assert all(listening(port) for port in stack.ports())

    assert stack.stop(sig) == 0

    assert not [pid for pid in processes if alive(pid)]
    assert not [port for port in stack.ports() if listening(port)]
    assert "stopped 4 processes" in stack.stderr()


def test_taken_port_is_one_line_and_starts_nothing(start: StartStack) -> None:
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        stack = start("--port", str(taken), wait=False)
        code = stack.process.wait(60)
    assert code == 1
    lines = stack.stderr().strip().splitlines()
    assert lines == [
        f"shardstack: port {taken} on {HOST} (for gateway) is not free: Address already in use"
    ]
    assert not [port for port in stack.ports()[1:] if listening(port)]


def test_child_dying_at_start_is_one_line_and_stops_the_rest(
    start: StartStack, tmp_path: Path
) -> None:
    # A real start-up failure in one shard process.
    hook = site_hook(
        tmp_path,
        "import os, sys\n"
        "if os.environ.get('SHARD_ID') == '1':\n"
        "    print('simulated start-up failure', file=sys.stderr, flush=True)\n"
        "    os._exit(3)\n",
    )
    stack = start(wait=False, PYTHONPATH=hook)
    code = stack.process.wait(60)
    assert code == 1
    last = stack.stderr().strip().splitlines()[-1]
    assert last == "shardstack: shard-01 exited with code 3: simulated start-up failure"
    assert "Traceback" not in stack.stderr()
    assert not [port for port in stack.ports() if listening(port)]


def test_prometheus_runs_beside_the_stack_and_stops_with_it(start: StartStack) -> None:
    require_binary("prometheus")
    port = free_port()
    stack = start("--prometheus-port", str(port))
    [prometheus] = [
        pid for pid in direct_children(stack.process.pid) if "prometheus" in cmdline(pid)
    ]
    assert f"Prometheus http://{HOST}:{port}, scraping every 1s" in stack.stderr()
    assert httpx.get(f"http://{HOST}:{port}/-/ready", trust_env=False).status_code == 200

    assert stack.stop() == 0
    assert not alive(prometheus)
    assert not listening(port)
    assert "stopped 5 processes" in stack.stderr()


def test_without_prometheus_on_path_the_stack_runs_and_says_so(
    start: StartStack, tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    # An explicit empty PATH is only possible without --no-prometheus, which start() adds
    # unless a --prometheus option is given: --prometheus-port is one.
    stack = start("--prometheus-port", str(free_port()), PATH=str(empty))
    assert "no `prometheus` on PATH: running without it" in stack.stderr()
    assert "metrics  no Prometheus" in stack.stderr()
    assert get(f"{stack.gateway_url}/api/aggregate").json()["status"] == "complete"


def test_a_test_attaches_to_the_whole_stacks_shards_by_its_fleet_file(
    stack: RunningStack,
) -> None:
    fleet = Fleet.attach_file(stack.stderr_path.parent / "logs" / FLEET_FILE_NAME)
    assert fleet.urls == [stack.shard_url(shard) for shard in range(20)]
    assert fleet.token == stack.admin_headers()["authorization"].removeprefix("Bearer ")
    assert [shard.zone for shard in fleet.shards] == [None] * 20
    before = fleet.received(7)[7].calls
    get(f"{stack.shard_url(7)}/data").raise_for_status()
    after = fleet.received(7)[7]
    assert after.calls == before + 1
    assert after.recent[-1].request_id is None  # asked directly, not through the gateway
