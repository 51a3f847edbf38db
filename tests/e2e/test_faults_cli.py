"""The fault CLI and scenario runner against a real `shardstack up`: the token handed over
by `up`, a three-line fault session, and a seeded scenario that replays identically."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import RunningStack, default_sigint, running_stack
from tests.support import SCHEDULING_MARGIN_S


@pytest.fixture(scope="module")
def _stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # Breakers and the retry budget carry state from one request to the next; off, every
    # outcome here is the faults' alone, and a seeded scenario replays request for request.
    with running_stack(
        tmp_path_factory.mktemp("stack"), "--latency", "fixed:1", shards=4,
        GATEWAY_BREAKER_FAILURES="0", GATEWAY_RETRY_BUDGET="0",
    ) as running:  # fmt: skip
        yield running


@pytest.fixture
def stack(_stack: RunningStack) -> Iterator[RunningStack]:
    """The module's stack, every fault cleared after each test."""
    yield _stack
    assert _stack.cli("fault", "clear").returncode == 0


def _statuses(stack: RunningStack, request_id: str | None = None) -> dict[int, str]:
    headers = {} if request_id is None else {"x-request-id": request_id}
    answer = httpx.get(
        f"{stack.gateway_url}/api/aggregate", headers=headers, timeout=30, trust_env=False
    )
    return {entry["shard"]: entry["status"] for entry in answer.json()["shards"]}


def test_a_fault_session_with_the_token_up_saved(stack: RunningStack) -> None:
    assert "(generated; saved for the CLI in" in stack.stderr()

    injected = stack.cli("fault", "inject", "1,3", "error", "status=503", "--for", "30s")
    assert injected.returncode == 0, injected.stderr
    assert injected.stdout.startswith("injected error-")
    assert injected.stdout.rstrip().endswith("(error) on shards 1,3 for 30s")
    assert _statuses(stack) == {0: "ok", 1: "error", 2: "ok", 3: "error"}

    listed = stack.cli("fault", "list")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["SHARD", "ID", "KIND", "PROB", "LEFT", "APPLIED", "PARAMS"]
    assert [line.split()[0] for line in lines[1:]] == ["1", "3"]
    assert all(line.split()[2] == "error" and "status=503" not in line for line in lines[1:])

    cleared = stack.cli("fault", "clear")
    assert cleared.stdout.strip() == "cleared 2 faults on 4 shards"
    assert set(_statuses(stack).values()) == {"ok"}
    assert stack.cli("fault", "list").stdout.strip() == "no active faults"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["inject", "7", "error"], 2, "shardstack: invalid input: shards: '7' is outside"),
        (["inject", "1", "error", "status=99"], 2, "shardstack: invalid input: status: "),
        (["inject", "1", "meteor"], 2, "shardstack: invalid input: kind: 'meteor'"),
        (["inject", "1", "error", "--for", "soon"], 2, "shardstack: invalid input: --for: "),
        (["inject", "1", "error", "-p", "3"], 2, "shardstack: invalid input: probability: "),
        (["list", "--token", "x" * 20], 1, "shardstack: the gateway at http://"),
        (["remove", "nothing"], 1, "shardstack: no shard has a fault 'nothing'"),
    ],
)
def test_bad_fault_commands_fail_in_one_line_and_change_nothing(
    stack: RunningStack, args: list[str], code: int, message: str
) -> None:
    result = stack.cli("fault", *args)
    assert result.returncode == code
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert stack.cli("fault", "list").stdout.strip() == "no active faults"


def test_the_cli_says_when_no_gateway_answers(stack: RunningStack) -> None:
    nowhere = "http://127.0.0.1:9"
    result = stack.cli("fault", "list", gateway=nowhere)
    assert result.returncode == 1
    assert result.stderr.startswith("shardstack: no admin token for http://127.0.0.1:9")
    result = stack.cli("fault", "list", "--token", "t" * 20, gateway=nowhere)
    assert result.stderr.startswith("shardstack: cannot reach the gateway at http://127.0.0.1:9")


SCENARIO = """
name: replay check
seed: 99
steps:
  - at: 0s
    shards: {random: 2}
    inject: {kind: error, status: 500, probability: 0.5}
  - at: 1s
    shards: "0"
    inject: {kind: latency, latency: "fixed:5"}
    for: 1s
"""
# What the scenario plans, relative to its first step: (fault id, appears, disappears).
PLANNED = {"replay-check-1": (0.0, None), "replay-check-2": (1.0, 2.0)}
POLL_S = 0.02


def _watch_faults(stack: RunningStack, stop: threading.Event) -> dict[tuple[int, str], list[float]]:
    """When each (shard, fault id) was first and last seen on the shards, polling their
    admin API through the gateway until `stop` is set."""
    seen: dict[tuple[int, str], list[float]] = {}
    with httpx.Client(headers=stack.admin_headers(), trust_env=False, timeout=5) as client:
        while not stop.is_set():
            now = time.monotonic()
            for entry in client.get(f"{stack.gateway_url}/admin/faults").json()["shards"]:
                for fault in entry["faults"]:
                    seen.setdefault((entry["shard"], fault["id"]), [now, now])[1] = now
            time.sleep(POLL_S)
    return seen


def test_a_seeded_scenario_replays_identically(stack: RunningStack, tmp_path: Path) -> None:
    """Twice the same faults on the same shards at the same moments (seen on the shards,
    not read from the runner's output), and the same per-request outcomes after."""
    path = tmp_path / "replay.yaml"
    path.write_text(SCENARIO)

    def run_once() -> tuple[dict[tuple[int, str], tuple[float, float]], list[dict[int, str]]]:
        stop = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            watching = pool.submit(_watch_faults, stack, stop)
            result = stack.cli("scenario", "run", str(path), "--keep")
            time.sleep(5 * POLL_S)
            stop.set()
            seen = watching.result()
        assert result.returncode == 0, result.stderr
        started = min(first for first, _ in seen.values())
        moments = {key: (first - started, last - started) for key, (first, last) in seen.items()}
        # The same request ids in both runs: the shards key every roll on them.
        outcomes = [_statuses(stack, f"scenario-{index}") for index in range(30)]
        assert stack.cli("fault", "clear").returncode == 0
        return moments, outcomes

    first_moments, first_outcomes = run_once()
    again_moments, again_outcomes = run_once()

    assert first_moments.keys() == again_moments.keys()
    assert sorted(fault for _, fault in first_moments) == sorted(
        ["replay-check-1", "replay-check-1", "replay-check-2"]
    )
    assert [shard for shard, fault in first_moments if fault == "replay-check-2"] == [0]
    for moments in (first_moments, again_moments):
        for (_, fault), (appeared, disappeared) in moments.items():
            planned_in, planned_out = PLANNED[fault]
            assert abs(appeared - planned_in) <= SCHEDULING_MARGIN_S, (fault, moments)
            if planned_out is not None:
                assert abs(disappeared - planned_out) <= SCHEDULING_MARGIN_S, (fault, moments)

    # Per request, the shards roll the same dice: keyed by seed, request id and fault id.
    assert first_outcomes == again_outcomes
    errors = [shard for outcome in first_outcomes for shard, s in outcome.items() if s == "error"]
    assert {shard for shard, fault in first_moments if fault == "replay-check-1"} == set(errors)
    assert 5 < len(errors) < 55


def test_a_bad_scenario_is_refused_before_anything_is_injected(
    stack: RunningStack, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO.replace("status: 500", "status: 5000"))
    result = stack.cli("scenario", "run", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("shardstack: invalid input: steps.0.inject.status: ")
    path.write_text("steps: [unclosed")
    result = stack.cli("scenario", "run", str(path))
    assert result.returncode == 2
    assert "not valid YAML at line 1" in result.stderr
    assert stack.cli("fault", "list").stdout.strip() == "no active faults"


def test_shipped_scenarios_are_valid() -> None:
    scenarios = sorted(Path(__file__).parents[2].joinpath("scenarios").glob("*.yaml"))
    assert len(scenarios) >= 3
    for path in scenarios:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "shardstack",
                "scenario",
                "check",
                str(path),
                "--shards",
                "20",
                "--zones",
                "4",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr


LONG_SCENARIO = """
name: interrupted
steps:
  - at: 0s
    shards: all
    inject: {kind: latency, latency: "fixed:2"}
  - at: 60s
    shards: "1"
    inject: {kind: error}
"""


@pytest.mark.parametrize(
    ("sig", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "term"]
)
def test_ctrl_c_or_term_stops_a_scenario_and_removes_what_it_injected(
    stack: RunningStack, tmp_path: Path, sig: signal.Signals, exit_code: int
) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(LONG_SCENARIO)
    out = tmp_path / "out"
    with out.open("w") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "shardstack", "scenario", "run", str(path),
             "--gateway", stack.gateway_url],
            env={**os.environ, **stack.env}, stdout=stdout, stderr=subprocess.PIPE, text=True,
            preexec_fn=default_sigint,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "interrupted-1" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        listed = stack.cli("fault", "list").stdout
        assert "interrupted-1" in listed
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == exit_code
    assert "removing the scenario's faults" in stderr
    assert stack.cli("fault", "list").stdout.strip() == "no active faults"
