"""A real shard process's data port: the payload, seeded replay, `Server-Timing`, HTTP/1.1
as clients use it (keep-alive, pipelining, HTTP/1.0, bad requests), and packed processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from tests.support import ADMIN, HOST, StartShard, assert_problem, free_port_block, wait_until


def _get(url: str, **kwargs: object) -> httpx.Response:
    return httpx.get(url, timeout=10, trust_env=False, **kwargs)  # type: ignore[arg-type]


def _timing(response: httpx.Response) -> dict[str, dict[str, str]]:
    """`Server-Timing` as {name: {param: value}}."""
    entries: dict[str, dict[str, str]] = {}
    for entry in response.headers["server-timing"].split(","):
        name, *params = entry.strip().split(";")
        entries[name] = dict(param.split("=", 1) for param in params)
    return entries


def _exchange(port: int, raw: bytes, answers: int) -> bytes:
    """Send `raw` on one connection; what comes back once `answers` heads have arrived
    (or the server closed)."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while received.count(b"HTTP/1.") < answers or not received.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def test_data_carries_shard_id_delay_records_and_server_timing(start_shard: StartShard) -> None:
    shard = start_shard(3, "uniform:0,1", RECORDS="4", RECORD_BYTES="16")
    response = _get(f"{shard.url}/data")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "date" in response.headers
    body = response.json()
    assert body["shard"] == 3
    assert 0 <= body["delay_ms"] <= 1
    assert len(body["records"]) == 4
    assert all(len(record["value"]) == 16 for record in body["records"])
    assert body["records"][2]["key"] == "shard-3-2"
    timing = _timing(response)
    assert list(timing) == ["delay", "total"]
    assert float(timing["delay"]["dur"]) == pytest.approx(body["delay_ms"], abs=0.001)
    assert float(timing["total"]["dur"]) >= float(timing["delay"]["dur"])


def test_server_timing_names_each_fault_that_acted(start_shard: StartShard) -> None:
    shard = start_shard(0, "fixed:2")
    added = httpx.post(
        f"{shard.admin_url}/admin/faults",
        json={"kind": "latency", "latency": "fixed:30", "id": "slow-disk"},
        headers=ADMIN,
        trust_env=False,
    )
    assert added.status_code == 201
    response = _get(f"{shard.url}/data", headers={"x-shardstack-fault": "error status=503"})
    assert response.status_code == 401  # a request fault needs the token; nothing acted
    response = _get(
        f"{shard.url}/data", headers={**ADMIN, "x-shardstack-fault": "error status=503"}
    )
    assert response.status_code == 503
    timing = _timing(response)
    assert list(timing) == ["delay", "latency", "error", "total"]
    assert timing["latency"] == {"desc": '"slow-disk"', "dur": "30.000"}
    assert timing["error"] == {"desc": '"request"'}
    assert float(timing["delay"]["dur"]) == 32.0
    assert 32.0 <= float(timing["total"]["dur"]) < 32.0 + 1000


def test_the_shard_exports_injected_and_served_time(start_shard: StartShard) -> None:
    shard = start_shard(0, "fixed:5")
    for _ in range(5):
        assert _get(f"{shard.url}/data").status_code == 200
    exposition = _get(f"{shard.admin_url}/metrics").text
    samples = dict(
        line.rsplit(" ", 1) for line in exposition.splitlines() if line and line[0] != "#"
    )
    assert float(samples["shard_requests_total"]) == 5
    assert float(samples["shard_delay_seconds_count"]) == 5
    assert float(samples["shard_delay_seconds_sum"]) == pytest.approx(0.025)
    assert float(samples["shard_served_seconds_count"]) == 5
    assert float(samples["shard_served_seconds_sum"]) >= 0.025


def test_same_seed_replays_the_same_delays_and_seed_or_id_changes_them(
    start_shard: StartShard,
) -> None:
    def delays(shard_id: int, seed: int) -> list[float]:
        shard = start_shard(shard_id, "lognormal:0.01,0.2", SEED=str(seed))
        with httpx.Client(trust_env=False) as client:
            return [client.get(f"{shard.url}/data").json()["delay_ms"] for _ in range(20)]

    replay = delays(1, 42)
    assert delays(1, 42) == replay
    assert delays(1, 43) != replay
    assert delays(2, 42) != replay


def test_runtime_latency_changes_what_the_data_port_waits(start_shard: StartShard) -> None:
    shard = start_shard(0, "fixed:0")
    response = httpx.put(
        f"{shard.admin_url}/admin/latency",
        json={"model": "fixed", "ms": 25},
        headers=ADMIN,
        trust_env=False,
    )
    assert response.status_code == 200
    answer = _get(f"{shard.url}/data")
    assert answer.json()["delay_ms"] == 25.0
    assert answer.elapsed.total_seconds() >= 0.025


def test_health_and_errors_on_the_data_port(start_shard: StartShard) -> None:
    shard = start_shard(4)
    body = _get(f"{shard.url}/healthz").json()
    assert body["shard"] == 4
    assert body["status"] == "ok"
    assert body["pid"] == shard.process.pid
    assert_problem(_get(f"{shard.url}/nope"), 404)
    misplaced = _get(f"{shard.url}/admin/faults")
    assert_problem(misplaced, 404)
    assert "the admin API and /metrics are on the admin port" in misplaced.json()["detail"]
    refused = httpx.post(f"{shard.url}/data", trust_env=False)
    assert_problem(refused, 405)
    assert refused.headers["allow"] == "GET"
    bad = _get(f"{shard.url}/data", headers={**ADMIN, "x-shardstack-fault": "meteor"})
    assert_problem(bad, 422, ["x-shardstack-fault"])


def test_keep_alive_pipelining_and_http_1_0(start_shard: StartShard) -> None:
    shard = start_shard(0, "uniform:0,3")
    request = b"GET /data HTTP/1.1\r\nhost: shard\r\n\r\n"
    # Five pipelined requests on one connection: five answers, in order, none merged.
    received = _exchange(
        shard.port, request * 4 + request.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"), 5
    )
    assert received.count(b"HTTP/1.1 200 OK") == 5
    assert received.count(b"connection: close") == 1
    with socket.create_connection((HOST, shard.port), timeout=10) as sock:
        sock.sendall(b"GET /data HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):  # HTTP/1.0: the server closes after the answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"}]}")
    with socket.create_connection((HOST, shard.port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")
    assert b"application/problem+json" in answer


def test_a_packed_process_serves_shards_with_their_own_ports_state_and_faults(
    start_shard: StartShard,
) -> None:
    shards = start_shard(5, "fixed:1", pack=3)
    ids = [_get(f"http://{HOST}:{shards.port + i}/data").json()["shard"] for i in range(3)]
    assert ids == [5, 6, 7]
    admin = [f"http://{HOST}:{shards.admin_port + i}" for i in range(3)]
    assert [_get(f"{url}/healthz").json()["shard"] for url in admin] == [5, 6, 7]

    fault = {"kind": "error", "status": 500}
    assert httpx.post(f"{admin[1]}/admin/faults", json=fault, headers=ADMIN).status_code == 201
    down = {"kind": "down"}
    assert httpx.post(f"{admin[2]}/admin/faults", json=down, headers=ADMIN).status_code == 201
    assert _get(f"http://{HOST}:{shards.port}/data").status_code == 200
    assert _get(f"http://{HOST}:{shards.port + 1}/data").status_code == 500

    def refused() -> bool:
        try:
            _get(f"http://{HOST}:{shards.port + 2}/data")
        except httpx.ConnectError:
            return True
        return False

    wait_until(refused, 10, "the packed shard 7's data port closed")
    assert _get(f"{admin[2]}/healthz").status_code == 200  # its admin port stays up
    faults = [_get(f"{url}/admin/faults", headers=ADMIN).json()["faults"] for url in admin]
    assert [[entry["kind"] for entry in listed] for listed in faults] == [[], ["error"], ["down"]]

    os.kill(shards.process.pid, signal.SIGKILL)  # the trade-off: one process, three shards
    shards.process.wait(10)
    for index in range(2):
        with pytest.raises(httpx.ConnectError):
            _get(f"http://{HOST}:{shards.port + index}/data")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PACK": "0"}, "SHARD_PACK"),
        ({"PACK": "2", "ADMIN_PORT": "+1"}, "overlap the data ports"),
    ],
)
def test_a_bad_pack_is_refused_in_one_line(env: dict[str, str], message: str) -> None:
    port = free_port_block(4)
    settings = {
        f"SHARD_{key}": str(port + 1) if value == "+1" else value for key, value in env.items()
    }
    result = subprocess.run(
        [sys.executable, "-m", "shard_sim"],
        env={**os.environ, "SHARD_PORT": str(port), **settings},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("shard: invalid setting: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
