"""The experiments behind docs/benchmarks.md, each the `shardstack` CLI (or wrk) as a
user runs it; every function returns what the page needs from its run."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from shardstack.control.client import DEFAULT_GATEWAY

ROOT = Path(__file__).resolve().parent.parent
SHARDSTACK = [sys.executable, "-m", "shardstack"]
GATEWAY = DEFAULT_GATEWAY  # where `shardstack up` serves by default


def bench(json_path: Path, *args: str) -> dict[str, Any]:
    """`shardstack bench ARGS --json`; the table it prints and its results by variant."""
    command = [*SHARDSTACK, "bench", *args, "--json", str(json_path)]
    print("$ shardstack bench " + " ".join(args), file=sys.stderr)
    table = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    print(table, file=sys.stderr)
    results = orjson.loads(json_path.read_bytes())
    return {"command": "shardstack bench " + " ".join(args), "table": table.rstrip(),
            "results": {result["name"]: result for result in results}}  # fmt: skip


def calibrate(json_path: Path, *args: str) -> dict[str, Any]:
    """`shardstack bench calibrate ARGS --json`; the table it prints and its report."""
    command = [*SHARDSTACK, "bench", "calibrate", *args, "--json", str(json_path)]
    print("$ shardstack bench calibrate " + " ".join(args), file=sys.stderr)
    table = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    print(table, file=sys.stderr)
    return {"command": "shardstack bench calibrate " + " ".join(args), "table": table.rstrip(),
            "report": orjson.loads(json_path.read_bytes())}  # fmt: skip


@contextlib.contextmanager
def _stack(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`shardstack up ARGS` until the block ends, stopped as Ctrl-C would."""
    process = subprocess.Popen(
        [*SHARDSTACK, "up", "--no-prometheus", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{GATEWAY}/readyz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None:
                raise RuntimeError(f"shardstack up {' '.join(args)} exited")
            time.sleep(0.5)
        else:
            raise RuntimeError("the stack did not become ready in 90 s")
        time.sleep(2)  # every gunicorn worker up, not only the first
        yield process
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)


def generator_check(duration: str) -> dict[str, Any]:
    """The same target, 32 connections, loaded by wrk and by `shardstack bench` in turn;
    then the gateway's worker is profiled with py-spy while wrk loads it again."""
    seconds = int(duration.rstrip("s"))
    with _stack("--workers", "1", "--latency", "fixed:1") as process:
        [worker] = _gunicorn_master(process.pid).children()
        wrk_command = ["wrk", "-t1", "-c32", f"-d{seconds}s", f"{GATEWAY}/api/aggregate"]
        wrk_out = subprocess.run(wrk_command, check=True, stdout=subprocess.PIPE, text=True).stdout
        ours = bench(_scratch(), "run", GATEWAY, "-c", "32", "-d", duration)
        # Profiled on a third run: sampling slows the worker a little.
        profile = _scratch().with_suffix(".txt")
        wrk = subprocess.Popen(wrk_command, stdout=subprocess.DEVNULL)
        time.sleep(1)
        subprocess.run(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking",
             "-d", str(seconds - 2), "-r", "250", "-f", "raw", "-o", str(profile),
             "-p", str(worker.pid)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wrk.wait()
    wrk_rate = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk_out).group(1))  # type: ignore[union-attr]
    return {"wrk": wrk_rate, "bench": ours["results"]["gateway"]["throughput"],
            "profile": _profile_shares(profile)}  # fmt: skip


# Where a worker's time goes, by the first rule that matches a sampled stack.
_PROFILE_PARTS = (
    ("prometheus-client (metrics)", ("prometheus_client",)),
    ("aiohttp client: building and sending requests", ("AiohttpUpstream",)),
    ("fan-out: timeouts, permits, results, JSON parsing", ("FanOut",)),
    ("FastAPI / Starlette: routing, validation, the aggregate route", ("fastapi", "starlette")),
    ("aiohttp client: reading answers off the sockets", ("aiohttp",)),
    ("uvicorn: the gateway's own HTTP", ("uvicorn/protocols",)),
)


def _profile_shares(path: Path) -> list[tuple[str, float]]:
    """Shares of the worker's busy samples (its event loop thread; idle threads left out)."""
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if "WorkerThread" in stack:  # anyio's idle thread pool
            continue
        total += int(samples)
        part = next((name for name, marks in _PROFILE_PARTS if any(m in stack for m in marks)),
                    "the event loop itself (uvloop, in C)")  # fmt: skip
        counts[part] = counts.get(part, 0) + int(samples)
    return sorted(((name, n / total) for name, n in counts.items()), key=lambda x: -x[1])


def half_saturation(duration: str, shards_per_process: int) -> dict[str, Any]:
    """20 shards at a fixed 10 ms, 2 workers: the gateway's saturation rate (closed loop),
    then half of it as an open loop, against the gateway and the floor in turn."""
    common = ("compare", "--latency", "fixed:10", "--workers", "2",
              "--shards-per-process", str(shards_per_process))  # fmt: skip
    saturated = bench(_scratch(), *common, "--variants", "gateway-aiohttp", "-c", "64",
                       "-d", duration)["results"]["gateway-aiohttp"]  # fmt: skip
    rate = round(saturated["throughput"] / 2)
    half = bench(_scratch(), *common, "--variants", "gateway-aiohttp,floor",
                  "--rate", str(rate), "-d", "20s")  # fmt: skip
    idle = bench(_scratch(), *common, "--variants", "gateway-aiohttp,floor",
                  "--rate", "5", "-d", duration)  # fmt: skip
    return {"saturation": saturated["throughput"], "rate": rate, "idle": idle, **half}


def shard_cost(seconds: float, rounds: int) -> dict[str, Any]:
    """benchmarks/shard_cost.py: one shard's CPU per answer beside the servers it was
    chosen against."""
    command = [sys.executable, str(ROOT / "benchmarks" / "shard_cost.py"),
               "--duration", str(seconds), "--rounds", str(rounds), "--json"]  # fmt: skip
    print("$ " + " ".join(command[1:]), file=sys.stderr)
    results = orjson.loads(subprocess.run(command, check=True, stdout=subprocess.PIPE).stdout)
    return {"command": "benchmarks/shard_cost.py " + " ".join(command[2:-1]), "results": results}


def connections(count: int) -> dict[str, Any]:
    """benchmarks/connections.py against `shardstack up` (2 workers): `count` connections
    (the claim), then as many as one client process can open here (its open-file limit)."""
    # Idle keep-alive connections are closed after GATEWAY_KEEPALIVE_S (5 s by default);
    # holding thousands of mostly idle clients needs it longer.
    with _stack("--latency", "fixed:1", env={"GATEWAY_KEEPALIVE_S": "300"}) as process:
        master = _gunicorn_master(process.pid)
        runs = {}
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        for connections in (count, max(count, hard - 500)):
            command = [sys.executable, str(ROOT / "benchmarks" / "connections.py"),
                       "--connections", str(connections), "--rate", "500",
                       "--pid", str(master.pid)]  # fmt: skip
            print("$ " + " ".join(command[1:]), file=sys.stderr)
            out = subprocess.run(command, check=True, stdout=subprocess.PIPE).stdout
            runs[connections] = orjson.loads(out)
            time.sleep(5)  # the previous run's connections closed
    return {"runs": list(runs.values()), "hard_limit": hard}


def _gunicorn_master(launcher_pid: int) -> psutil.Process:
    [master] = [p for p in psutil.Process(launcher_pid).children()
                if "gunicorn" in " ".join(p.cmdline())]  # fmt: skip
    return master


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="shardstack-report-")) / "results.json"


def stack_memory(duration: str) -> dict[str, Any]:
    """The whole local stack (launcher, 20 shards, gateway with 2 workers) under load.

    PSS (proportional set size) splits each shared page among the processes that map
    it, so its sum is the stack's memory; the RSS sum counts shared pages (the
    interpreter, libraries, what gunicorn workers share with their master) once per
    process, and is shown beside it.
    """
    with _stack("--latency", "fixed:1") as process:
        root = psutil.Process(process.pid)
        peak_pss = peak_rss = 0
        load = subprocess.Popen(
            [*SHARDSTACK, "bench", "run", GATEWAY, "-c", "32", "-d", duration],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while load.poll() is None:
            pss = rss = 0
            for member in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    memory = member.memory_full_info()
                    pss, rss = pss + memory.pss, rss + memory.rss
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
            time.sleep(0.5)
        processes = 1 + len(root.children(recursive=True))
    return {"peak_pss": peak_pss, "peak_rss": peak_rss, "processes": processes}


# Backends that behave like real ones (docs/benchmarks.md): each a scenario file played
# against `shardstack up` while `shardstack bench run` loads it, under two gateway settings.
SHARD_COUNT = 20
_SHARD_ADMIN = "http://127.0.0.1:{port}/metrics"


def _metric_sum(url: str, name: str) -> float:
    """Every sample of `name` at `url`, summed over its label sets."""
    text = httpx.get(url, timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{")
    )


def _shards_sum(name: str) -> float:
    return sum(
        _metric_sum(_SHARD_ADMIN.format(port=10000 + shard), name) for shard in range(SHARD_COUNT)
    )


def _sample_queues(depths: list[float], stop: threading.Event) -> None:
    """The shards' summed queue depth, once a second."""
    while not stop.wait(1.0):
        with contextlib.suppress(httpx.HTTPError):
            depths.append(_shards_sum("shard_queue_depth"))


_GATEWAY_COUNTERS = ("gateway_retries_sent_total", "gateway_hedges_sent_total")


def under_scenario(
    scenario: str, stack: tuple[str, ...], env: dict[str, str], load: tuple[str, ...],
    query: str = "",
) -> dict[str, Any]:  # fmt: skip
    """`shardstack up STACK` with `env`, `scenario run scenarios/SCENARIO` playing, and
    `shardstack bench run LOAD` on the aggregate route (with `query`) meanwhile."""
    with _stack(*stack, env=env):
        gateway_before = {
            name: _metric_sum(f"{GATEWAY}/metrics", name) for name in _GATEWAY_COUNTERS
        }
        refused_before = _shards_sum("shard_capacity_refusals_total")
        calls_before = _shards_sum("shard_requests_total")
        play = subprocess.Popen(
            [*SHARDSTACK, "scenario", "run", str(ROOT / "scenarios" / scenario)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.5)  # every step of the scenario in place
        depths: list[float] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_queues, args=(depths, stop), daemon=True)
        sampler.start()
        try:
            run = bench(_scratch(), "run", f"{GATEWAY}/api/aggregate{query}", *load)
        finally:
            stop.set()
            sampler.join()
            play.send_signal(signal.SIGINT)  # stops it and removes what it injected
            play.wait(timeout=60)
        gateway_after = {
            name: _metric_sum(f"{GATEWAY}/metrics", name) for name in _GATEWAY_COUNTERS
        }
        refused = _shards_sum("shard_capacity_refusals_total") - refused_before
        calls = _shards_sum("shard_requests_total") - calls_before
    result = run["results"]["gateway"]
    sent = {name: gateway_after[name] - gateway_before[name] for name in _GATEWAY_COUNTERS}
    return {
        "command": run["command"], "result": result,
        "retries": sent["gateway_retries_sent_total"],
        "hedges": sent["gateway_hedges_sent_total"],
        "refused": refused, "shard_calls": calls,
        "queue_depth_mean": sum(depths) / len(depths) if depths else 0.0,
        "queue_depth_max": max(depths, default=0.0),
        # No warm-up (the loads below set none), so the shards' counters and the load
        # count the same requests.
        "shard_calls_per_request": calls / result["sent"] if result["sent"] else None,
    }  # fmt: skip


def backends(duration: str) -> dict[str, Any]:
    """Finite capacity against the semaphore, a retry storm, a lost zone: each under two
    gateway settings, the same load and the same scenario."""
    no_breakers = {"GATEWAY_BREAKER_FAILURES": "0"}
    # Service 50 ms, 150 ms once the scenario slows every shard: 20 shards x 2 workers
    # then serve 13 aggregates/s, and the load asks for 20.
    capacity_stack = ("--workers", "1", "--latency", "fixed:50",
                      "--capacity", "workers=2,queue=4,overflow=503")  # fmt: skip
    over = ("--rate", "20", "-c", "64", "-d", duration, "--warmup", "0s")
    capacity = {
        label: under_scenario("capacity-slowdown.yaml", capacity_stack,
                              {**no_breakers, "GATEWAY_SEMAPHORE_SIZE": str(size)}, over)
        for label, size in (("40", 40), ("400", 400))
    }  # fmt: skip
    brownout_stack = ("--workers", "1", "--zones", "4", "--latency", "lognormal:5,40",
                      "--capacity", "workers=4,queue=8,overflow=503")  # fmt: skip
    steady = ("--rate", "40", "-c", "64", "-d", duration, "--warmup", "0s")
    storm = {
        label: under_scenario("zone-brownout.yaml", brownout_stack,
                              {**no_breakers, "GATEWAY_HEDGE": "true",
                               "GATEWAY_RETRY_BUDGET": budget, "GATEWAY_HEDGE_BUDGET": budget},
                              steady)
        for label, budget in (("unbudgeted", "1"), ("budgeted", "0.1"))
    }  # fmt: skip
    loss_stack = ("--workers", "1", "--zones", "4", "--latency", "lognormal:5,40")
    loss = {
        label: under_scenario("zone-loss.yaml", loss_stack, {}, steady, query)
        for label, query in (("min_ok=1", ""), ("min_ok=16", "?min_ok=16"))
    }  # fmt: skip
    return {"capacity": capacity, "storm": storm, "loss": loss}
