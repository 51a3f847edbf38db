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

from gateway.settings import GatewaySettings
from shardstack.bench.exposition import Samples
from shardstack.bench.readiness import wait_ready
from shardstack.bench.variants import FAN_OUT_VARIANT
from shardstack.control.client import DEFAULT_GATEWAY
from shardstack_kernel import topology

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


def _default_sigint() -> None:
    """A child's preexec: SIGINT stops it as Ctrl-C would, even when this run was started
    in the background (which leaves SIGINT ignored, and Python then leaves it alone)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    """Until `url` answers 200, then a moment more for every gunicorn worker, not only
    the first."""
    wait_ready(url, process, timeout_s, what, every_s=0.5)
    time.sleep(2)


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
        _wait_ready(f"{GATEWAY}/readyz", process, 90, f"shardstack up {' '.join(args)}")
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
    ("pool sampling (the kernel's connection count)", ("sample_pool",)),
    ("pyreqwest client: its Python side, and Rust while holding the GIL", ("PyreqwestUpstream",)),
    ("aiohttp client", ("AiohttpUpstream", "aiohttp")),
    ("fan-out: timeouts, permits, results, JSON parsing", ("FanOut",)),
    ("FastAPI / Starlette: routing, validation, the aggregate route", ("fastapi", "starlette")),
    ("uvicorn: the gateway's own HTTP", ("uvicorn/protocols",)),
)
_NATIVE_THREAD = "pyreqwest's runtime (tokio, its own thread, no Python frames)"


def _profile_shares(path: Path) -> list[tuple[str, float]]:
    """Shares of the worker's busy samples (its event loop thread; idle threads left out)."""
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if "WorkerThread" in stack:  # anyio's idle thread pool
            continue
        total += int(samples)
        unnamed = "the event loop itself (uvloop, in C)" if stack.strip() else _NATIVE_THREAD
        part = next((name for name, marks in _PROFILE_PARTS if any(m in stack for m in marks)),
                    unnamed)  # fmt: skip
        counts[part] = counts.get(part, 0) + int(samples)
    return sorted(((name, n / total) for name, n in counts.items()), key=lambda x: -x[1])


def half_saturation(duration: str, shards_per_process: int) -> dict[str, Any]:
    """20 shards at a fixed 10 ms, 2 workers: the gateway's saturation rate (closed loop),
    then half of it as an open loop, against the gateway and the floor in turn."""
    common = ("compare", "--latency", "fixed:10", "--workers", "2",
              "--shards-per-process", str(shards_per_process))  # fmt: skip
    saturated = bench(_scratch(), *common, "--variants", FAN_OUT_VARIANT, "-c", "64",
                       "-d", duration)["results"][FAN_OUT_VARIANT]  # fmt: skip
    rate = round(saturated["throughput"] / 2)
    half = bench(_scratch(), *common, "--variants", f"{FAN_OUT_VARIANT},floor",
                  "--rate", str(rate), "-d", "20s")  # fmt: skip
    idle = bench(_scratch(), *common, "--variants", f"{FAN_OUT_VARIANT},floor",
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
            memory = _tree_memory(root)
            peak_pss = max(peak_pss, memory["pss_bytes"])
            peak_rss = max(peak_rss, memory["rss_bytes"])
            time.sleep(0.5)
        processes = 1 + len(root.children(recursive=True))
    return {"peak_pss": peak_pss, "peak_rss": peak_rss, "processes": processes}


# Backends that behave like real ones (docs/benchmarks.md): each a scenario file played
# against `shardstack up` while `shardstack bench run` loads it, under two gateway settings.
SHARD_COUNT = 20
_SHARD_ADMIN = "http://127.0.0.1:{port}/metrics"


def _metric_sum(url: str, name: str) -> float:
    """Every sample of `name` at `url`, summed over its label sets."""
    return Samples.parse(httpx.get(url, timeout=5).text).total(name)


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
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_default_sigint,
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


# Service 50 ms, 150 ms once capacity-slowdown.yaml slows every shard: 20 shards x 2
# workers then serve 13 aggregates/s, and the load asks for 20.
CAPACITY_STACK = ("--workers", "1", "--latency", "fixed:50",
                  "--capacity", "workers=2,queue=4,overflow=503")  # fmt: skip
BROWNOUT_STACK = ("--workers", "1", "--zones", "4", "--latency", "lognormal:5,40",
                  "--capacity", "workers=4,queue=8,overflow=503")  # fmt: skip
NO_BREAKERS = {"GATEWAY_BREAKER_FAILURES": "0"}


def open_loop(rate: int, duration: str) -> tuple[str, ...]:
    return ("--rate", str(rate), "-c", "64", "-d", duration, "--warmup", "0s")


def backends(duration: str) -> dict[str, Any]:
    """Finite capacity against the semaphore, a retry storm, a lost zone: each under two
    gateway settings, the same load and the same scenario."""
    capacity = {
        label: under_scenario("capacity-slowdown.yaml", CAPACITY_STACK,
                              {**NO_BREAKERS, "GATEWAY_SEMAPHORE_SIZE": str(size)},
                              open_loop(20, duration))
        for label, size in (("40", 40), ("400", 400))
    }  # fmt: skip
    steady = open_loop(40, duration)
    storm = {
        label: under_scenario("zone-brownout.yaml", BROWNOUT_STACK,
                              {**NO_BREAKERS, "GATEWAY_HEDGE": "true",
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


# The gateway's CPU as the limit (docs/benchmarks.md, "When the CPU is the limit").
SEED_PORT = 8100


@contextlib.contextmanager
def _seed(workers: int, keepalive_s: int = 5) -> Iterator[psutil.Process]:
    """The seed pattern (shardstack/bench/baselines/seed.py) under gunicorn on SEED_PORT,
    fanning out to the shards of the `shardstack up` that is running."""
    urls = ",".join(topology.local_shard_urls())
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "shardstack.bench.baselines.seed:app",
         "--worker-class", "uvicorn_worker.UvicornWorker", "--workers", str(workers),
         "--bind", f"127.0.0.1:{SEED_PORT}", "--keep-alive", str(keepalive_s),
         "--log-level", "warning"],
        env={**os.environ, "SEED_SHARD_URLS": urls},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_ready(f"http://127.0.0.1:{SEED_PORT}/readyz", process, 60, "the seed")
        yield psutil.Process(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()  # a seed that collapsed may not finish its queue
            process.wait()


def _wrk_statuses(url: str, connections: int, seconds: int, timeout_s: int) -> dict[str, Any]:
    """wrk in a closed loop with benchmarks/statuses.lua: answers by status, socket errors
    and requests with no answer after `timeout_s`, client-side latency percentiles."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s",
               "-s", str(ROOT / "benchmarks" / "statuses.lua"), url]  # fmt: skip
    print("$ " + " ".join(command), file=sys.stderr)
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    return {"command": " ".join(command), **orjson.loads(out.splitlines()[-1])}


@contextlib.contextmanager
def _one_frozen_one_killed(frozen: int = 3, killed: int = 7) -> Iterator[None]:
    """Shard `killed` SIGKILLed (the launcher does not restart it) and shard `frozen`
    stopped with SIGSTOP until the block ends."""
    pids = {
        shard: httpx.get(f"{topology.local_shard_urls()[shard]}/healthz", timeout=5).json()["pid"]
        for shard in (frozen, killed)
    }
    os.kill(pids[killed], signal.SIGKILL)
    os.kill(pids[frozen], signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pids[frozen], signal.SIGCONT)


def cpu_storm(seconds: int) -> dict[str, Any]:
    """(a) Closed loops of 1,000 and 2,000 wrk connections against 20 shards at `fixed:1`,
    one frozen and one killed, a 1 s deadline; the gateway, then the seed on the same
    shards."""
    runs: dict[str, Any] = {}
    with _stack("--workers", "2", "--latency", "fixed:1"), _one_frozen_one_killed():
        for count in (1000, 2000):
            runs[f"gateway {count}"] = _wrk_statuses(
                f"{GATEWAY}/api/aggregate?timeout_ms=1000", count, seconds, 3
            )
            time.sleep(3)
        for count in (1000, 2000):
            with _seed(workers=2):  # a new one each time: a collapsed seed stays so
                runs[f"seed {count}"] = _wrk_statuses(
                    f"http://127.0.0.1:{SEED_PORT}/api/aggregate", count, seconds, 3
                )
    return runs


def _tree_memory(master: psutil.Process) -> dict[str, int]:
    """PSS and RSS of a process and all its descendants (a server's master and workers,
    a whole stack), summed."""
    pss = rss = 0
    for process in [master, *master.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            memory = process.memory_full_info()
            pss, rss = pss + memory.pss, rss + memory.rss
    return {"pss_bytes": pss, "rss_bytes": rss}


def _process_cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def shed_cost(seconds: int) -> dict[str, Any]:
    """A worker's CPU per refusal at the front door: one worker whose one place is held
    by an aggregate on a slow shard, loaded by wrk. Once with the pacing off (the refusal
    alone), once as shipped (a refused connection's next request read 5 to 200 ms
    later); as shipped, also the worker's idle CPU over as long (what a slower rate
    leaves in its figure) and /healthz, the cheapest answer through FastAPI, for scale."""
    default_pause = GatewaySettings.model_fields["refusal_pause_max_ms"].default
    held = f"{GATEWAY}/api/aggregate?timeout_ms=100000&shards=0"
    figures: dict[str, Any] = {}
    for label, pause_ms in (("unpaced", 0), ("paced", default_pause)):
        env = {"GATEWAY_MAX_AGGREGATES_IN_FLIGHT": "1", "GATEWAY_LOOP_LAG_TARGET_MS": "0",
               "GATEWAY_MAX_TIMEOUT_MS": "100000", "GATEWAY_SHARD_TIMEOUT_MS": "100000",
               "GATEWAY_BREAKER_FAILURES": "0", "GATEWAY_GRACEFUL_TIMEOUT_S": "1",
               "GATEWAY_REFUSAL_PAUSE_MAX_MS": str(pause_ms)}  # fmt: skip
        stack = ("--workers", "1", "--shards", "2", "--latency", "fixed:100000")
        with _stack(*stack, env=env) as process:
            [worker] = _gunicorn_master(process.pid).children()
            holder = threading.Thread(target=_quietly_get, args=(held,), daemon=True)
            holder.start()
            time.sleep(1)  # the one place taken
            paths = [("door_503", held)]
            if label == "paced":
                before = _process_cpu_s(worker)
                time.sleep(seconds)
                figures["idle_us_per_s"] = (_process_cpu_s(worker) - before) / seconds * 1e6
                paths.append(("fastapi_healthz", f"{GATEWAY}/healthz"))
            for name, url in paths:
                # Paced, each connection is refused about five times a second: 1,000 of
                # them give enough refusals for the CPU's 10 ms ticks to count them well.
                clients = 1000 if (name, label) == ("door_503", "paced") else 32
                before = _process_cpu_s(worker)
                run = _wrk_statuses(url, clients, seconds, 3)
                spent = _process_cpu_s(worker) - before
                answers = sum(run["statuses"].values())
                figures[f"{name} {label}" if name == "door_503" else name] = {
                    "answers": answers, "statuses": run["statuses"], "connections": clients,
                    "cpu_us_per_answer": spent / max(1, answers) * 1e6,
                }  # fmt: skip
    return figures


def _quietly_get(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(url, timeout=120)


SPREAD_RATE = 150  # connections opened per second by each client process


def connections_spread(
    total: int, processes: int, workers: int, with_seed: bool = True
) -> dict[str, Any]:
    """(c) benchmarks/connections.py as `processes` client processes, each from its own
    loopback source address, `total` connections in all, against the gateway with
    `workers` workers and then the seed with as many; each process under the open-file
    limit, and so each server worker."""
    runs: dict[str, Any] = {}

    def spread(port: int, master: psutil.Process) -> dict[str, Any]:
        commands = [
            [sys.executable, str(ROOT / "benchmarks" / "connections.py"),
             "--connections", str(total // processes + (i < total % processes)),
             "--rate", str(SPREAD_RATE), "--hold", "10",
             "--port", str(port), "--pid", str(master.pid), "--source", f"127.0.0.{2 + i}"]
            for i in range(processes)
        ]  # fmt: skip
        print(f"$ {processes} x " + " ".join(commands[0][1:]), file=sys.stderr)
        idle = _tree_memory(master)
        clients = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for c in commands]  # fmt: skip
        outs = [client.communicate(timeout=900) for client in clients]
        # A client that failed is part of the result (a server that drops what it holds).
        return {"command": f"{processes} x " + " ".join(commands[0][1:]), "idle": idle,
                "clients": [orjson.loads(out) if client.returncode == 0
                            else {"failed": err.decode(errors="replace").strip()[-300:]}
                            for client, (out, err) in zip(clients, outs, strict=True)]}  # fmt: skip

    env = {"GATEWAY_KEEPALIVE_S": "300"}
    with _stack("--workers", str(workers), "--latency", "fixed:1", env=env) as process:
        runs["gateway"] = spread(topology.GATEWAY_PORT, _gunicorn_master(process.pid))
        time.sleep(5)
        if with_seed:
            with _seed(workers, keepalive_s=300) as seed:
                runs["seed"] = spread(SEED_PORT, seed)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {"runs": runs, "hard_limit": hard, "workers": workers, "total": total,
            "rate": SPREAD_RATE}  # fmt: skip
