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
