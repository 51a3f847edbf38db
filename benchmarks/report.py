"""Regenerate docs/benchmarks.md and docs/benchmarks.png: every figure from one run.

    .venv/bin/python benchmarks/report.py            # about 14 minutes on 2 cores
    .venv/bin/python benchmarks/report.py --quick    # shorter runs, for a look

Each experiment is the `shardstack` CLI as a user runs it (`shardstack bench --compare`,
`--tail`, `shardstack up` loaded by `shardstack bench` and by wrk); this script only
starts them, reads their JSON and writes the page.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import matplotlib
import orjson
import psutil

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SHARDSTACK = [sys.executable, "-m", "shardstack"]
GATEWAY = "http://127.0.0.1:8000"
MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (figures are rougher)")
    args = parser.parse_args()
    duration, rounds = ("5s", 1) if args.quick else ("10s", 3)
    work = Path(tempfile.mkdtemp(prefix="shardstack-report-"))
    started = time.monotonic()

    compare = _bench(work / "compare.json", "--compare", "--latency", "fixed:1",
                     "-d", duration, "--rounds", str(rounds))  # fmt: skip
    tail = _bench(work / "tail.json", "--tail", "-d", "30s" if not args.quick else "10s")
    generator = _generator_check(duration)
    half = _half_saturation(duration)
    memory = _stack_memory(duration)
    overload = _bench(work / "overload.json", "--overload", "--workers", "2", "-c", "24",
                      "-d", "15s" if not args.quick else "5s")  # fmt: skip
    connections = _connections(10_000 if not args.quick else 2_000)

    _plot(compare, tail, DOCS / "benchmarks.png")
    page = _page(compare, tail, generator, half, memory, overload, connections,
                 time.monotonic() - started, args.quick)  # fmt: skip
    (DOCS / "benchmarks.md").write_text(page)
    print(f"wrote {DOCS / 'benchmarks.md'} and {DOCS / 'benchmarks.png'}", file=sys.stderr)


def _bench(json_path: Path, *args: str) -> dict[str, Any]:
    """`shardstack bench ARGS --json`; the table it prints and its results by variant."""
    command = [*SHARDSTACK, "bench", *args, "--json", str(json_path)]
    print("$ shardstack bench " + " ".join(args), file=sys.stderr)
    table = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    print(table, file=sys.stderr)
    results = orjson.loads(json_path.read_bytes())
    return {"command": "shardstack bench " + " ".join(args), "table": table.rstrip(),
            "results": {result["name"]: result for result in results}}  # fmt: skip


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


def _generator_check(duration: str) -> dict[str, Any]:
    """The same target, 32 connections, loaded by wrk and by `shardstack bench` in turn;
    then the gateway's worker is profiled with py-spy while wrk loads it again."""
    seconds = int(duration.rstrip("s"))
    with _stack("--workers", "1", "--latency", "fixed:1") as process:
        [worker] = _gunicorn_master(process.pid).children()
        wrk_command = ["wrk", "-t1", "-c32", f"-d{seconds}s", f"{GATEWAY}/api/aggregate"]
        wrk_out = subprocess.run(wrk_command, check=True, stdout=subprocess.PIPE, text=True).stdout
        ours = _bench(_scratch(), GATEWAY, "-c", "32", "-d", duration)
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


def _half_saturation(duration: str) -> dict[str, Any]:
    """20 shards at a fixed 10 ms, 2 workers: the gateway's saturation rate (closed loop),
    then half of it as an open loop, against the gateway and the floor in turn."""
    common = ("--compare", "--latency", "fixed:10", "--workers", "2")
    saturated = _bench(_scratch(), *common, "--variants", "gateway-aiohttp", "-c", "64",
                       "-d", duration)["results"]["gateway-aiohttp"]  # fmt: skip
    rate = round(saturated["throughput"] / 2)
    half = _bench(_scratch(), *common, "--variants", "gateway-aiohttp,floor",
                  "--rate", str(rate), "-d", "20s")  # fmt: skip
    idle = _bench(_scratch(), *common, "--variants", "gateway-aiohttp,floor",
                  "--rate", "5", "-d", duration)  # fmt: skip
    return {"saturation": saturated["throughput"], "rate": rate, "idle": idle, **half}


def _connections(count: int) -> dict[str, Any]:
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


def _stack_memory(duration: str) -> dict[str, Any]:
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
            [*SHARDSTACK, "bench", GATEWAY, "-c", "32", "-d", duration],
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


def _plot(compare: dict[str, Any], tail: dict[str, Any], path: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for axes, experiment, title in (
        (left, compare, "Aggregate latency, closed loop at saturation"),
        (right, tail, "Heavy-tailed shards: without and with hedging"),
    ):
        for name, result in experiment["results"].items():
            points = result["latency_cdf_ms"]
            axes.plot([p[0] for p in points], [p[1] for p in points], label=name)
        axes.set_xscale("log")
        axes.set_xlabel("latency (ms, log scale)")
        axes.set_ylabel("fraction of requests at or below")
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _page(
    compare: dict[str, Any],
    tail: dict[str, Any],
    generator: dict[str, Any],
    half: dict[str, Any],
    memory: dict[str, Any],
    overload: dict[str, Any],
    connections: dict[str, Any],
    took_s: float,
    quick: bool,
) -> str:
    c = compare["results"]
    gateway, seed, floor = c["gateway-aiohttp"], c["seed"], c["floor"]
    t = tail["results"]
    plain, hedged = t["gateway-aiohttp"], t["gateway-hedged"]
    p = half["results"]["gateway-aiohttp"]["latency_ms"]
    floor_p = half["results"]["floor"]["latency_ms"]
    extra = hedged["shard_calls_per_request"] / plain["shard_calls_per_request"] - 1
    machine = (
        f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
        f"{_os_name()}"
    )

    floor_ratio = gateway["throughput"] / floor["throughput"]
    seed_ratio = gateway["throughput"] / seed["throughput"]
    tail_ratio = plain["latency_ms"]["99.0"] / hedged["latency_ms"]["99.0"]
    model_plain, model_hedged = _tail_model(0.99, hedged=False), _tail_model(0.99, hedged=True)
    return _TEMPLATE.format(
        machine=machine,
        took=f"{took_s / 60:.0f}",
        quick=" (`--quick`: shorter runs than the defaults)" if quick else "",
        compare_command=compare["command"],
        compare_table=compare["table"],
        floor_ratio=f"{floor_ratio:.2f}",
        seed_ratio=f"{seed_ratio:.1f}",
        cpu_ratio=f"{seed['cpu_ms_per_answer'] / gateway['cpu_ms_per_answer']:.1f}",
        shards_cpu=f"{gateway['shards_cpu_ms_per_answer']:.1f}",
        floor_over_seed=f"{floor['throughput'] / seed['throughput']:.1f}",
        floor_verdict=_verdict(floor_ratio >= 0.8),
        seed_verdict=_verdict(seed_ratio >= 20),
        saturation=f"{half['saturation']:.0f}",
        half_rate=half["rate"],
        half_p50=f"{p['50.0']:.1f}",
        half_p99=f"{p['99.0']:.1f}",
        floor_p50=f"{floor_p['50.0']:.1f}",
        floor_p99=f"{floor_p['99.0']:.1f}",
        half_table=half["table"],
        idle_table=half["idle"]["table"],
        half_verdict=_verdict(p["50.0"] <= 12 and p["99.0"] <= 20),
        tail_command=tail["command"],
        tail_table=tail["table"],
        tail_ratio=f"{tail_ratio:.1f}",
        extra=f"{extra * 100:.1f}",
        tail_verdict=_verdict(tail_ratio >= 5 and extra <= 0.10),
        model_p50=f"{_tail_model(0.5, hedged=False):.0f}",
        model_plain_p99=f"{model_plain:.0f}",
        model_hedged_p99=f"{model_hedged:.0f}",
        model_ratio=f"{model_plain / model_hedged:.1f}",
        plain_p50=f"{plain['latency_ms']['50.0']:.0f}",
        hedged_p99=f"{hedged['latency_ms']['99.0']:.0f}",
        pss=f"{memory['peak_pss'] / MIB:.0f}",
        rss=f"{memory['peak_rss'] / MIB:.0f}",
        processes=memory["processes"],
        memory_verdict=_verdict(memory["peak_pss"] < 1024 * MIB),
        wrk=f"{generator['wrk']:.1f}",
        ours=f"{generator['bench']:.1f}",
        generator_ratio=f"{generator['bench'] / generator['wrk']:.2f}",
        profile="\n".join(
            f"| {name} | {share * 100:.0f} % |" for name, share in generator["profile"]
        ),
        gateway_cpu=f"{gateway['cpu_ms_per_answer']:.2f}",
        floor_cpu=f"{floor['cpu_ms_per_answer']:.2f}",
        **_overload_figures(overload),
        **_connection_figures(connections),
    )


def _overload_figures(overload: dict[str, Any]) -> dict[str, str]:
    r = overload["results"]
    peak, seed_peak = r["gateway"]["throughput"], r["seed"]["throughput"]
    figures = {"overload_command": overload["command"], "overload_table": overload["table"]}
    worst = min(r[f"gateway {m}x"]["throughput"] for m in (2, 10)) / peak
    worst_p99 = max(r[f"gateway {m}x"]["ok_latency_ms"]["99.0"] or 0 for m in (2, 10))
    for m in (2, 10):
        g, s = r[f"gateway {m}x"], r[f"seed {m}x"]
        figures |= {
            f"g{m}_share": f"{g['throughput'] / peak:.0%}",
            f"g{m}_p99": f"{g['ok_latency_ms']['99.0']:.0f}",
            f"g{m}_shed_p50": _ms(g["shed_latency_ms"]["50.0"]),
            f"g{m}_shed_p99": _ms(g["shed_latency_ms"]["99.0"]),
            f"g{m}_shed_share": f"{g['errors'].get('HTTP 503', 0) / max(1, g['sent']):.0%}",
            f"s{m}_share": f"{s['throughput'] / seed_peak:.0%}",
            f"s{m}_p99": _p99_phrase(s["ok_latency_ms"]["99.0"]),
            f"s{m}_timeouts": str(s["errors"].get("timeout", 0)),
        }
    figures["overload_verdict"] = _verdict(worst >= 0.9 and worst_p99 <= 2000)
    return figures


def _connection_figures(connections: dict[str, Any]) -> dict[str, str]:
    claim, furthest = connections["runs"][0], connections["runs"][-1]
    phases = ("first", "again")
    rows = []
    for run in connections["runs"]:
        errors = sum(run["open_errors"].values()) + sum(
            sum(run[phase]["errors"].values()) for phase in ("first", "again")
        )
        answers = run["first"]["answers"] + run["again"]["answers"]
        statuses = {k: run["first"]["statuses"].get(k, 0) + run["again"]["statuses"].get(k, 0)
                    for k in {*run["first"]["statuses"], *run["again"]["statuses"]}}  # fmt: skip
        late = run["first"]["past_deadline"] + run["again"]["past_deadline"]
        rows.append(
            f"| {run['connections']:,} | {run['opened']:,} | {answers:,} | "
            + ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items()))
            + f" | {errors} | {late} | {run['first']['max_ms']:.0f} / {run['again']['max_ms']:.0f}"
            f" | {run['held']['open_fds']:,} | {run['held']['pss_bytes'] / MIB:.0f} |"
        )
    per_connection = (furthest["held"]["pss_bytes"] - claim["held"]["pss_bytes"]) / max(
        1, furthest["connections"] - claim["connections"]
    )
    claim_ok = (
        claim["opened"] == claim["connections"]
        and not claim["open_errors"]
        and not claim["first"]["errors"] and not claim["again"]["errors"]
        and claim["first"]["past_deadline"] + claim["again"]["past_deadline"] == 0
        and claim["held"]["pss_bytes"] < 512 * MIB
    )  # fmt: skip
    return {
        "connections_table": "\n".join(rows),
        "claim": f"{claim['connections']:,}",
        "claim_pss": f"{claim['held']['pss_bytes'] / MIB:.0f}",
        "per_connection_kib": f"{per_connection / 1024:.0f}",
        "fifty_k_mib": f"{per_connection * 50_000 / MIB:.0f}",
        "furthest": f"{furthest['connections']:,}",
        "furthest_ok": f"{sum(furthest[phase]['statuses'].get('200', 0) for phase in phases):,}",
        "furthest_answers": f"{furthest['first']['answers'] + furthest['again']['answers']:,}",
        "claim_slowest": f"{max(claim['first']['max_ms'], claim['again']['max_ms']):.0f}",
        "furthest_slowest": f"{max(furthest['first']['max_ms'], furthest['again']['max_ms']):.0f}",
        "fd_limit": f"{connections['hard_limit']:,}",
        "connections_verdict": _verdict(claim_ok),
    }


def _p99_phrase(value: float | None) -> str:
    return "not one 200" if value is None else f"2xx p99 {value:.0f} ms"


def _ms(value: float | None) -> str:
    """A percentile of no answers is null in the JSON."""
    return "-" if value is None else f"{value:.1f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _tail_model(q: float, hedged: bool, shards: int = 20) -> float:
    """The aggregate's q-quantile (ms) from the --tail latency model alone: the slowest of
    `shards` Pareto(2 ms, 1.5) shards, each, if `hedged`, also sent again at its p95."""
    scale, alpha = 2.0, 1.5  # TAIL_LATENCY in shardstack/bench_commands.py
    hedge_at = scale * 0.05 ** (-1 / alpha)

    def survival(x: float) -> float:
        return 1.0 if x <= scale else (scale / x) ** alpha

    def aggregate_survival(x: float) -> float:
        shard = survival(x) * (survival(x - hedge_at) if hedged else 1.0)
        return 1.0 - (1.0 - shard) ** shards

    low, high = scale, 1e6
    for _ in range(200):  # bisection: aggregate_survival falls as x grows
        middle = (low + high) / 2
        low, high = (middle, high) if aggregate_survival(middle) > 1 - q else (low, middle)
    return high


def _os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip('"')
    return platform.system()


_TEMPLATE = (Path(__file__).with_name("report_template.md")).read_text()


if __name__ == "__main__":
    if shutil.which("wrk") is None:
        sys.exit("report.py: wrk is needed (Debian: apt-get install wrk)")
    main()
