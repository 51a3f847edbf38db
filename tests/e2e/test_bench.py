"""`shardstack bench` as a user runs it: `run` against a real `shardstack up`, and `compare`
starting real shards, the gateway, the seed pattern and the floor on loopback."""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from shardstack_kernel.topology import ADMIN_PORT_OFFSET
from tests.e2e.observe import scrape
from tests.e2e.stack import RunningStack, StartStack, default_sigint, listening
from tests.support import free_port, free_port_block


def _bench(
    *args: str, timeout_s: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shardstack", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "SHARDSTACK_GATEWAY": "", **(env or {})},
    )


def _ports(shards: int) -> tuple[int, int]:
    """The shards' base port and the variants' port, drawn together so they cannot meet."""
    base = free_port_block(shards + 1, also_at=ADMIN_PORT_OFFSET)
    return base, base + shards


def _results(path: Path) -> dict[str, dict[str, Any]]:
    return {result["name"]: result for result in orjson.loads(path.read_bytes())}


def _aggregates(stack: RunningStack) -> float:
    return scrape(stack.gateway_url).total("gateway_aggregate_requests_total")


def test_a_closed_loop_run_reports_what_the_gateway_served(
    start: StartStack, tmp_path: Path
) -> None:
    stack = start("--workers", "2", "--latency", "fixed:2", shards=3)
    before = _aggregates(stack)
    out = tmp_path / "run.json"
    run = _bench("run", stack.gateway_url, "-c", "4", "-d", "2s", "--warmup", "500ms",
                 "--json", str(out))  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = _results(out)["gateway"]
    # The gateway answered the warm-up and the recorded part; nothing was lost.
    assert result["errors"] == {}
    assert result["answers"] == result["sent"] > 0
    served = _aggregates(stack) - before
    assert result["answers"] < served <= result["answers"] + 4 * 500  # warm-up on top
    latency = result["latency_ms"]
    assert 2.0 <= latency["50.0"] <= latency["90.0"] <= latency["99.0"] <= latency["99.9"]
    # CPU and memory of the master and both workers, read from /proc.
    assert result["cpu_s"] > 0
    assert result["cpu_ms_per_answer"] > 0
    assert 30 * 2**20 < result["peak_rss_bytes"] < 1024 * 2**20
    assert "answers/s" in run.stdout
    assert "CPU ms/answer" in run.stdout
    assert result["latency_cdf_ms"][-1][1] == 1.0


def test_an_open_loop_keeps_its_rate_and_counts_latency_from_when_each_was_due(
    start: StartStack, tmp_path: Path
) -> None:
    # Each aggregate takes 200 ms and one connection serves them one at a time, so
    # requests due every 50 ms queue: timed from when they were due, their latency grows
    # far past 200 ms. A closed loop on one connection would show 200 ms throughout.
    stack = start("--latency", "fixed:200", shards=2)
    out = tmp_path / "open.json"
    run = _bench("run", stack.gateway_url, "--rate", "20", "-c", "1", "-d", "2s", "--warmup", "0",
                 "--json", str(out))  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = _results(out)["gateway"]
    assert result["sent"] == 40  # 20/s for 2 s, whatever the server did
    assert result["errors"] == {}
    assert result["latency_ms"]["99.0"] > 1000

    closed = tmp_path / "closed.json"
    run = _bench(
        "run", stack.gateway_url, "-c", "1", "-d", "2s", "--warmup", "0", "--json", str(closed)
    )
    assert run.returncode == 0, run.stderr
    assert _results(closed)["gateway"]["latency_ms"]["99.0"] < 600


def test_failures_are_reported_by_kind_and_no_answer_at_all_fails_the_command(
    tmp_path: Path,
) -> None:
    port = free_port()
    out = tmp_path / "down.json"
    run = _bench(
        "run", f"http://127.0.0.1:{port}", "-d", "500ms", "--warmup", "0", "--json", str(out)
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("shardstack: no answers: connect error")
    assert "Traceback" not in run.stderr
    result = _results(out)["gateway"]
    assert result["answers"] == 0
    assert result["errors"]["connect error"] == result["sent"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--duration", "soon"], "--duration: 'soon' is not a duration"),
        (["run", "--duration", "0"], "--duration: must be more than 0"),
        (["compare", "--duration", "0"], "--duration: must be more than 0"),
        (["run", "--rate", "-5"], "--rate"),
        (["run", "-c", "0"], "--connections"),
        (["run", "ftp://127.0.0.1:1"], "URL: 'ftp://127.0.0.1:1' is not an http:// URL"),
        # Options of another command are not options of this one.
        (["run", "--variants", "seed"], "No such option '--variants'"),
        (["overload", "--rate", "10"], "No such option '--rate'"),
        (["overload", "--rounds", "2"], "No such option '--rounds'"),
        (["overload", "http://127.0.0.1:1"], "unexpected extra argument"),
        (["compare", "http://127.0.0.1:1"], "unexpected extra argument"),
        (["compare", "--variants", "gateway,grpc,nginx"], "--variants: unknown grpc, nginx"),
        (["calibrate", "--rate", "0"], "--rate"),
        (["calibrate", "--latency", "lognormal:40,5"], "p99_ms"),
        (["calibrate", "--variants", "seed"], "No such option '--variants'"),
        # The former mode flags say where they went.
        (["--overload"], "bench --overload is now `shardstack bench overload`"),
        (["http://127.0.0.1:1", "--compare"], "bench --compare is now `shardstack bench compare`"),
    ],
)
def test_bad_input_is_one_line_and_sends_nothing(args: list[str], message: str) -> None:
    run = _bench(*args, timeout_s=30)
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert message in line


def test_compare_runs_each_variant_on_the_same_shards_and_gives_ratios(tmp_path: Path) -> None:
    shards = 3
    base, port = _ports(shards)
    out = tmp_path / "compare.json"
    run = _bench(
        "compare", "--variants", "gateway-pyreqwest,seed,floor,floor-pyreqwest",
        "--shards", str(shards),
        "--port", str(port), "--shard-base-port", str(base), "--latency", "fixed:1",
        "-c", "4", "-d", "1s", "--warmup", "500ms", "--json", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    results = _results(out)
    assert list(results) == ["gateway-pyreqwest", "seed", "floor", "floor-pyreqwest"]
    for result in results.values():
        assert result["errors"] == {}, result
        assert result["answers"] > 0
        assert 0 < result["cpu_ms_per_answer"] < 200, result
        assert result["shards_cpu_ms_per_answer"] > 0
        # The shards' own counters: exactly one call per shard per request, no more.
        assert result["shard_calls_per_request"] == pytest.approx(shards)
    # The headline's direction (a tenth or less of it on docs/benchmarks.md), loosely.
    gateway_cpu = results["gateway-pyreqwest"]["cpu_ms_per_answer"]
    assert gateway_cpu < results["seed"]["cpu_ms_per_answer"], results
    header, *rows, limit = run.stdout.strip().splitlines()
    assert header.split()[-6:] == ["x", "seed", "x", "floor", "x", "floor-pyreqwest"]
    floor_row = next(row for row in rows if row.startswith("floor "))
    assert floor_row.split()[-2] == "1.00"
    # The physical limit, measured with wrk in the same run, and each variant's multiple.
    found = re.match(r"physical limit: a C client \(wrk\) spends ([\d.]+) µs", limit)
    assert found, limit
    assert 0 < float(found.group(1)) < 1000
    assert re.search(r"gateway-pyreqwest \d+x", limit), limit
    # Everything it started is gone.
    assert not any(listening(p) for p in (port, base, base + shards - 1))


def test_calibrate_puts_each_layer_next_to_the_model(tmp_path: Path) -> None:
    shards = 3
    base, port = _ports(shards)
    out = tmp_path / "calibrate.json"
    run = _bench(
        "calibrate", "--shards", str(shards), "--port", str(port), "--shard-base-port",
        str(base), "--latency", "fixed:20", "--rate", "20", "-d", "2s", "--warmup", "500ms",
        "--json", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = orjson.loads(out.read_bytes())
    rows = {row["layer"]: row for row in report["rows"]}
    p50 = {layer: row["percentiles_ms"]["50.0"] for layer, row in rows.items()}
    answers = report["load"]["answers"]
    assert answers >= 30
    assert report["calls"] == shards * answers
    not_ok = report["calls_not_ok"], report["calls_unknown"], report["answers_unreadable"]
    assert not_ok == (0, 0, 0)
    # The model's figures, and the shards' account of what they injected: exactly it
    # (to the histograms' three digits).
    assert p50["requested (the model)"] == 20.0
    assert p50["slowest of N (the model)"] == pytest.approx(20.0, abs=0.05)
    assert all(
        value == pytest.approx(20.0, abs=0.05)
        for value in rows["injected at the shard"]["percentiles_ms"].values()
    )
    # Each layer adds to the one before it (bounds for a loaded 2-core machine).
    layers = ["injected at the shard", "served by the shard", "observed by the gateway"]
    assert p50[layers[0]] <= p50[layers[1]] <= p50[layers[2]] < 20.0 + 50
    assert 20.0 <= p50["gateway's own time"] <= p50["observed by the client"] < 20.0 + 100
    assert rows["observed by the client"]["count"] == answers
    assert {"requested", "injected", "served", "observed", "predicted", "client"} <= set(
        report["cdf_ms"]
    )
    table = run.stdout.splitlines()
    assert table[0].split()[:3] == ["layer", "p50", "ms"]
    assert any(line.startswith("aggregate  observed by the client") for line in table)
    assert f"{shards * answers:,} shard calls, 0 not ok" in run.stdout
    assert not any(listening(p) for p in (port, base, base + shards - 1))


def test_calibrate_shows_a_measured_model_served_end_to_end(tmp_path: Path) -> None:
    # A file of observed latencies, resampled by each shard process: every delay injected
    # is one of them, and the report's model rows are the file's own percentiles.
    observed = tmp_path / "observed.txt"
    observed.write_text("7\n" * 60 + "13\n" * 40)
    shards = 3
    base, port = _ports(shards)
    out = tmp_path / "calibrate.json"
    run = _bench(
        "calibrate", "--shards", str(shards), "--port", str(port), "--shard-base-port",
        str(base), "--latency", "empirical:observed.txt", "--rate", "20", "-d", "2s",
        "--warmup", "500ms", "--json", str(out),
        env={"SHARD_LATENCY_DIR": str(tmp_path)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = orjson.loads(out.read_bytes())
    assert report["models"] == ["empirical:path=observed.txt"]
    rows = {row["layer"]: row["percentiles_ms"] for row in report["rows"]}
    assert rows["requested (the model)"] == {"50.0": 7.0, "90.0": 13.0, "99.0": 13.0, "99.9": 13.0}
    injected = {round(ms) for ms, _ in report["cdf_ms"]["injected"]}
    assert injected == {7, 13}, report["cdf_ms"]["injected"]
    assert report["calls_not_ok"] == 0


def test_overload_offers_each_variant_multiples_of_its_own_peak(tmp_path: Path) -> None:
    # Three permits, three shards at 50 ms: one aggregate at a time, 20/s at most; ten
    # times that is shed, and what is admitted is still served.
    shards = 3
    base, port = _ports(shards)
    out = tmp_path / "overload.json"
    run = _bench(
        "overload", "--variants", "gateway", "--shards", str(shards), "--port", str(port),
        "--shard-base-port", str(base), "--latency", "fixed:50", "-c", "4", "-d", "2s",
        "--warmup", "500ms", "--json", str(out),
        env={"GATEWAY_SEMAPHORE_SIZE": "3"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    results = _results(out)
    assert list(results) == ["gateway", "gateway 2x", "gateway 10x"]
    peak = results["gateway"]
    assert peak["mode"] == "closed"
    assert 5 < peak["throughput"] <= 21
    for multiple in (2, 10):
        overloaded = results[f"gateway {multiple}x"]
        assert overloaded["mode"] == "open"
        assert overloaded["rate"] == pytest.approx(multiple * peak["throughput"], rel=0.01)
        assert set(overloaded["errors"]) <= {"HTTP 503"}, overloaded  # shed, nothing else
    # The goodput claim is a benchmark's (90 % of the peak, docs/benchmarks.md); here, in
    # seconds on a shared machine, its direction: most of the peak is still served.
    for multiple in (2, 10):
        assert results[f"gateway {multiple}x"]["throughput"] > peak["throughput"] / 2
    ten = results["gateway 10x"]
    assert ten["errors"]["HTTP 503"] > ten["sent"] / 2
    assert ten["ok_latency_ms"]["99.0"] < 2000  # admitted work finishes within the deadline
    header, *rows = run.stdout.strip().splitlines()
    assert header.split()[:3] == ["variant", "offered", "goodput/s"]
    assert [row.split()[0:2] for row in rows][1:] == [["gateway", "2x"], ["gateway", "10x"]]
    assert not any(listening(p) for p in (port, base, base + shards - 1))


def test_ctrl_c_stops_a_comparison_and_everything_it_started(tmp_path: Path) -> None:
    shards = 2
    base, port = _ports(shards)
    errors = tmp_path / "stderr"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "shardstack", "bench", "compare", "--shards", str(shards),
             "--port", str(port), "--shard-base-port", str(base), "-d", "60s"],
            stdout=subprocess.DEVNULL, stderr=stderr,
            preexec_fn=default_sigint,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "closed loop" not in errors.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # under load
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
    finally:
        process.kill()
    assert errors.read_text().strip().splitlines()[-1] == "shardstack: interrupted"
    assert not any(listening(p) for p in (port, base, base + shards - 1))


# A tail far past what the stack itself adds on two loaded cores (p99.9 of one call about
# 0.9 s, its p95 about 50 ms), so that the direction hedging moves the p99 is the shards'.
TAIL_MODEL = "lognormal:2,200"


@pytest.mark.timeout(600)
def test_tail_hedging_lowers_the_p99_with_few_extra_calls(tmp_path: Path) -> None:
    # The hedging figure is a benchmark's (docs/benchmarks.md); this is its short form:
    # three rounds of the same experiment, the median p99 of each variant compared with
    # a loose ratio, and the hedge budget checked in every round.
    shards = 10
    base, port = _ports(shards)
    plain_p99, hedged_p99 = [], []
    for round_index in range(3):
        out = tmp_path / f"tail-{round_index}.json"
        run = _bench(
            "tail", "--shards", str(shards), "--port", str(port), "--shard-base-port",
            str(base), "--latency", TAIL_MODEL, "-d", "6s", "--warmup", "1s",
            "--json", str(out), timeout_s=240,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        results = _results(out)
        plain, hedged = results["gateway-plain"], results["gateway-hedged"]
        # Every hedge's loser accounted for, read from the gateway after the run.
        assert plain["hedge_losers"] is None
        assert set(hedged["hedge_losers"]) == {"ended", "finished", "cut"}
        assert "hedged pairs" in run.stdout
        plain_p99.append(plain["latency_ms"]["99.0"])
        hedged_p99.append(hedged["latency_ms"]["99.0"])
        assert hedged["shard_calls_per_request"] <= 1.1 * shards  # the 10 % budget
    ratio = statistics.median(hedged_p99) / statistics.median(plain_p99)
    assert ratio < 0.6, (hedged_p99, plain_p99)
