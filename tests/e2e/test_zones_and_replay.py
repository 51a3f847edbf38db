"""Zones, correlated faults and replayable decisions, end to end: `shardstack up --zones`
with real shard processes, faults injected through the gateway and the CLI, and the
shards' decision log read back."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shardstack_kernel.topology import HOST
from tests.e2e.stack import RunningStack, start_stack, wait_until_up

SHARDS = 12
ZONES = 3  # shard i in z(i mod 3): four shards each


@pytest.fixture(scope="module")
def zoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, Path]]:
    work = tmp_path_factory.mktemp("zoned")
    log = work / "decisions.jsonl"
    stack = start_stack(
        work,
        "--zones", str(ZONES),
        "--seed", "11",
        "--latency", "lognormal:2,10",
        "--decision-log", str(log),
        "--allow-request-faults",
        shards=SHARDS,
        # Every shard call once, and no breaker opening: what is counted is what the
        # faults decided.
        GATEWAY_RETRY_BUDGET="0",
        GATEWAY_BREAKER_FAILURES="0",
    )  # fmt: skip
    try:
        wait_until_up(stack)
        yield stack, log
    finally:
        stack.stop()


@pytest.fixture
def stack(zoned: tuple[RunningStack, Path]) -> Iterator[RunningStack]:
    running, _ = zoned
    yield running
    running.cli("fault", "clear")


def _aggregate(stack: RunningStack, request_id: str | None = None, **headers: str) -> Any:
    if request_id is not None:
        headers["x-request-id"] = request_id
    answer = httpx.get(
        f"{stack.gateway_url}/api/aggregate",
        params={"timeout_ms": 5000},
        headers={**stack.admin_headers(), **headers},
        timeout=30,
        trust_env=False,
    )
    assert answer.status_code in (200, 502), answer.text
    return answer


def _in_zone(zone: int) -> set[int]:
    return {shard for shard in range(SHARDS) if shard % ZONES == zone}


def test_every_shard_is_in_its_zone_in_readyz_the_aggregate_and_the_metrics(
    stack: RunningStack,
) -> None:
    ready = httpx.get(f"{stack.gateway_url}/readyz", trust_env=False).json()
    assert ready["status"] == "ready"
    assert ready["zone_mismatch"] == []
    assert ready["zones"] == [f"z{shard % ZONES}" for shard in range(SHARDS)]
    answer = _aggregate(stack, "zone-check")
    assert answer.headers["x-request-id"] == "zone-check"
    body = answer.json()
    assert body["request_id"] == "zone-check"
    assert [(entry["shard"], entry["zone"]) for entry in body["shards"]] == [
        (shard, f"z{shard % ZONES}") for shard in range(SHARDS)
    ]
    metrics = httpx.get(f"{stack.gateway_url}/metrics", trust_env=False).text
    assert 'gateway_shard_info{shard="4",zone="z1"} 1.0' in metrics
    shard_metrics = httpx.get(f"{stack.admin_url(5)}/metrics", trust_env=False).text
    assert 'shard_info{shard="5",zone="z2"} 1.0' in shard_metrics
    generated = _aggregate(stack).headers["x-request-id"]
    assert len(generated) == 16
    assert generated != _aggregate(stack).headers["x-request-id"]


def test_a_k_of_n_fault_on_a_zone_hits_exactly_k_of_its_shards_on_every_request(
    stack: RunningStack,
) -> None:
    injected = stack.cli("fault", "inject", "zone:z1", "error", "status=500", "k_of_n=2")
    assert injected.returncode == 0, injected.stderr
    assert "on shards 1,4,7,10" in injected.stdout
    hit_sets = Counter()
    for index in range(40):
        body = _aggregate(stack, f"k-{index}").json()
        failed = {entry["shard"] for entry in body["shards"] if entry["status"] != "ok"}
        assert len(failed) == 2, body
        assert failed <= _in_zone(1), body
        hit_sets[frozenset(failed)] += 1
    assert len(hit_sets) >= 4  # of the 6 pairs, a different pair from request to request


def test_the_request_header_takes_zones_and_k_of_n_too(stack: RunningStack) -> None:
    fault = "zone:z2 error status=500 k_of_n=3; 0 latency latency=fixed:30"
    for index in range(15):
        body = _aggregate(stack, f"h-{index}", **{"x-shardstack-fault": fault}).json()
        failed = {entry["shard"] for entry in body["shards"] if entry["status"] != "ok"}
        assert len(failed) == 3, body
        assert failed <= _in_zone(2), body
        assert body["shards"][0]["injected_ms"] >= 30


def test_a_correlation_of_one_fails_a_zone_together_or_not_at_all(stack: RunningStack) -> None:
    injected = stack.cli(
        "fault", "inject", "zone:z0", "error", "status=500", "correlation=1", "-p", "0.5"
    )
    assert injected.returncode == 0, injected.stderr
    outcomes = Counter()
    for index in range(40):
        body = _aggregate(stack, f"c-{index}").json()
        failed = {entry["shard"] for entry in body["shards"] if entry["status"] != "ok"}
        assert failed in (set(), _in_zone(0)), body
        outcomes[bool(failed)] += 1
    assert outcomes[True] >= 8, outcomes
    assert outcomes[False] >= 8, outcomes


def _decided(stack: RunningStack, ids: list[str], threads: int) -> dict[tuple[str, int], Any]:
    def one(request_id: str) -> list[tuple[tuple[str, int], Any]]:
        body = _aggregate(stack, request_id).json()
        return [
            ((request_id, entry["shard"]), (entry["status"], entry.get("injected_ms")))
            for entry in body["shards"]
        ]

    with ThreadPoolExecutor(threads) as pool:
        return dict(pair for pairs in pool.map(one, ids) for pair in pairs)


def test_the_same_request_ids_replay_the_same_decisions_in_any_order_and_concurrency(
    zoned: tuple[RunningStack, Path], stack: RunningStack
) -> None:
    _, log = zoned
    for args in (
        ["all", "latency", "latency=lognormal:5,30", "-p", "0.3"],
        ["0-5", "error", "status=500", "-p", "0.2"],
        ["zone:z2", "error", "status=500", "k_of_n=1"],
    ):
        injected = stack.cli("fault", "inject", *args)
        assert injected.returncode == 0, injected.stderr
    ids = [f"replay-{index:03d}" for index in range(60)]
    first = _decided(stack, ids, threads=1)
    again = _decided(stack, ids[::-1], threads=8)
    assert first == again
    statuses = Counter(status for status, _ in first.values())
    assert statuses["ok"]
    assert statuses["error"] >= 60  # k_of_n alone fails 60 calls
    # The decision log holds both runs: every (request, shard, attempt) decided twice, alike.
    lines = _log_lines(log, set(ids), 2 * len(ids) * SHARDS)
    by_call: dict[tuple[str, int, int], list[tuple[float, list[str]]]] = {}
    for line in lines:
        key = (line["request_id"], line["shard"], line["attempt"])
        by_call.setdefault(key, []).append((line["delay_ms"], line["faults"]))
    assert len(by_call) == len(ids) * SHARDS
    differing = {
        key: decisions
        for key, decisions in by_call.items()
        if len(decisions) != 2 or decisions[0] != decisions[1]
    }
    assert differing == {}
    acted = Counter(fault.rsplit("-", 1)[0] for line in lines for fault in line["faults"])
    assert acted["latency"], acted
    assert acted["error"], acted


def _log_lines(log: Path, ids: set[str], expected: int) -> list[dict[str, Any]]:
    """The decision log's lines for `ids`, once the shards have flushed `expected` of them
    (each flushes within a fraction of a second)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
        kept = [line for line in lines if line["request_id"] in ids]
        if len(kept) >= expected or time.monotonic() > deadline:
            return kept
        time.sleep(0.2)


def _raw_get(stack: RunningStack, header: bytes) -> tuple[int, bytes]:
    port = int(stack.gateway_url.rsplit(":", 1)[1])
    with socket.create_connection((HOST, port), timeout=10) as conn:
        conn.sendall(
            b"GET /api/aggregate HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
            + header
            + b"\r\n\r\n"
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"x-request-id: " + b"r" * 129, "129 characters; at most 128"),
        # A tab is the one control character HTTP lets through in a header value.
        (b"x-request-id: a\tb", "holds 0x09; a request id is visible ASCII characters"),
        # One character to the gateway, two bytes as UTF-8 to a shard: refused here.
        (b"x-request-id: caf\xe9", "holds 0xe9; a request id is visible ASCII characters"),
    ],
)
def test_a_bad_request_id_is_a_422_naming_it(
    stack: RunningStack, header: bytes, reason: str
) -> None:
    status, body = _raw_get(stack, header)
    problem = orjson.loads(body)
    assert status == 422, body
    assert "x-request-id" in problem["detail"], problem
    assert reason in problem["detail"], problem


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["zone:z1", "error", "k_of_n=5"], "k_of_n: 5 is more than the 4 selected shards"),
        (["zone:z7", "error"], "shards: no zone 'z7'; zones are z0, z1, z2"),
        (["zone:z1", "error", "correlation=1.5"], "correlation: "),
        (["all", "down", "k_of_n=1"], "k_of_n: down acts on the listener"),
        (["all", "error", "k_of_n=2", "correlation=0.5"], "correlation: does not apply"),
    ],
)
def test_bad_zone_and_correlation_faults_fail_in_one_line_and_change_nothing(
    stack: RunningStack, args: list[str], message: str
) -> None:
    result = stack.cli("fault", "inject", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"shardstack: invalid input: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert stack.cli("fault", "list").stdout.strip() == "no active faults"
