"""docs/benchmarks.md and its plot from the experiments' results: figures, verdicts
against the targets, and the latency model the tail experiment is checked against."""

from __future__ import annotations

import contextlib
import platform
import re
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib
import psutil

from benchmarks import shard_cost
from gateway.settings import GatewaySettings
from shardstack.bench.variants import FAN_OUT_VARIANT
from shardstack.cli.bench import TAIL_LATENCY
from shardstack_kernel.latency import ParetoLatency, parse_latency

matplotlib.use("Agg")
import matplotlib.pyplot as plt

MIB = 1024 * 1024


def plot(compare: dict[str, Any], tail: dict[str, Any], path: Path) -> None:
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


# Layers as `bench calibrate` names them in its JSON, and how the plot labels them.
_CALL_CURVES = {
    "requested": "requested (the model)",
    "injected": "injected at the shard",
    "served": "served by the shard",
    "observed": "observed by the gateway",
}
_AGGREGATE_CURVES = {
    "predicted": "slowest of 20 (the model)",
    "gateway": "gateway's own time",
    "client": "observed by the client",
}


def plot_calibration(report: dict[str, Any], path: Path) -> None:
    """Per call and per aggregate, the fraction slower than x (log-log, so the tail shows)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for axes, curves, title in (
        (left, _CALL_CURVES, "One shard call"),
        (right, _AGGREGATE_CURVES, "The aggregate of 20"),
    ):
        for name, label in curves.items():
            points = [(ms, 1 - below) for ms, below in report["cdf_ms"][name] if below < 1]
            style = "--" if name in ("requested", "predicted") else "-"
            axes.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_ylim(1e-3, 1)
        axes.set_xlabel("latency (ms, log scale)")
        axes.set_ylabel("fraction slower (log scale)")
        axes.set_title(f"{title}: {', '.join(report['models'])}")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def page(
    shard: dict[str, Any],
    compare: dict[str, Any],
    tails: list[dict[str, Any]],
    generator: dict[str, Any],
    half: dict[str, dict[str, Any]],
    calibration: dict[str, Any],
    memory: dict[str, Any],
    overload: dict[str, Any],
    connections: dict[str, Any],
    backends: dict[str, Any],
    cpu: dict[str, Any],
    spread: dict[str, Any],
    took_s: float,
    quick: bool,
) -> str:
    c = compare["results"]
    gateway, seed, floor = c[FAN_OUT_VARIANT], c["seed"], c["floor"]
    tail = tails[0]
    t = tail["results"]
    plain, hedged = t["gateway-plain"], t["gateway-hedged"]
    ratios = [_tail_figures(run) for run in tails]
    tail_met = all(ratio >= 5 and more <= 0.10 for ratio, more in ratios)
    extra = ratios[0][1]
    # The layout this page recommends for the machine: the one with the lower p99.
    layout = min(half, key=lambda k: half[k]["results"][FAN_OUT_VARIANT]["latency_ms"]["99.0"])
    chosen = half[layout]
    p = chosen["results"][FAN_OUT_VARIANT]["latency_ms"]
    machine = (
        f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
        f"{_os_name()}"
    )

    floor_ratio = gateway["throughput"] / floor["throughput"]
    seed_ratio = gateway["throughput"] / seed["throughput"]
    tail_ratio = ratios[0][0]
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
        shards_cpu=f"{gateway['shards_cpu_ms_per_answer']:.2f}",
        seed_cpu=f"{seed['cpu_ms_per_answer']:.1f}",
        gateway_cpu_short=f"{gateway['cpu_ms_per_answer']:.2f}",
        floor_over_seed=f"{floor['throughput'] / seed['throughput']:.1f}",
        floor_verdict=_verdict(floor_ratio >= 1.3),
        seed_verdict=_verdict(seed_ratio >= 20),
        **_client_figures(c, compare["table"]),
        **_churn_figures(tails, tail["table"]),
        **_half_figures(half),
        recommended=_layout_name(layout),
        half_p50=f"{p['50.0']:.1f}",
        half_p99=f"{p['99.0']:.1f}",
        half_verdict=_verdict(p["50.0"] <= 12 and p["99.0"] <= 20),
        **_shard_figures(shard),
        **_calibration_figures(calibration),
        tail_command=tail["command"],
        tail_table=tail["table"],
        tail_ratio=f"{tail_ratio:.1f}",
        extra=f"{extra * 100:.1f}",
        tail_runs=", ".join(f"{ratio:.1f} x at {more * 100:.1f} %" for ratio, more in ratios),
        tail_verdict=_verdict(tail_met),
        tail_bound=(
            "The target holds in every run; what is left of the hedged p99 above the "
            "model's is that CPU, and the extra calls stay well under the budget's 10 %."
            if tail_met
            else "Not met, bounded by the CPU per aggregate of the gateway and the shards on "
            "two cores; the extra calls stay well under the budget's 10 %."
        ),
        tail_shards_cpu=f"{hedged['shards_cpu_ms_per_answer']:.1f}",
        tail_gateway_cpu=f"{hedged['cpu_ms_per_answer']:.1f}",
        tail_gateway_busy=f"{hedged['cpu_ms_per_answer'] * hedged['throughput'] / 1000:.0%}",
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
        generator_reading=_generator_reading(generator["bench"] / generator["wrk"]),
        profile="\n".join(
            f"| {name} | {share * 100:.0f} % |" for name, share in generator["profile"]
        ),
        gateway_cpu=f"{gateway['cpu_ms_per_answer']:.2f}",
        floor_cpu=f"{floor['cpu_ms_per_answer']:.2f}",
        **_overload_figures(overload),
        **_connection_figures(connections),
        **_backend_figures(backends),
        **_cpu_figures(cpu),
        **_spread_figures(spread),
    )


def _client_figures(c: dict[str, Any], table: str) -> dict[str, str]:
    """The upstream clients, the seed with sniffio, the pyreqwest floor and the physical
    limit (the line `bench compare` prints under its table)."""
    gateway = c[FAN_OUT_VARIANT]
    cpu = {name: result["cpu_ms_per_answer"] for name, result in c.items()}
    httpx_ratio = cpu["gateway-httpx"] / cpu["gateway-aiohttp"]
    limit = re.search(r"could cost ([\d.]+) ms per aggregate", table)
    limit_ms = float(limit.group(1)) if limit else float("nan")
    return {
        "seed_sniffio_ratio": f"{gateway['throughput'] / c['seed-sniffio']['throughput']:.1f}",
        "seed_sniffio_cpu": f"{cpu['seed-sniffio']:.1f}",
        "floor_pyreqwest_ratio": (
            f"{gateway['throughput'] / c['floor-pyreqwest']['throughput']:.2f}"
        ),
        "floor_pyreqwest_cpu": f"{cpu['floor-pyreqwest']:.2f}",
        "cpu_verdict": _verdict(cpu[FAN_OUT_VARIANT] <= 3.0),
        "pyreqwest_cpu": f"{cpu['gateway-pyreqwest']:.2f}",
        "aiohttp_cpu": f"{cpu['gateway-aiohttp']:.2f}",
        "httpx_cpu": f"{cpu['gateway-httpx']:.2f}",
        "httpx_ratio": f"{httpx_ratio:.1f}",
        "httpx_verdict": _verdict(httpx_ratio <= 2.0),
        "limit_ms": f"{limit_ms:.2f}",
        "limit_multiple": f"{cpu[FAN_OUT_VARIANT] / limit_ms:.0f}",
    }


def _churn_figures(tails: list[dict[str, Any]], table: str) -> dict[str, str]:
    """Connections closed for hedges over every tail run: losers cut at their deadline,
    against every loser still running at the answer (what cancelling them cost)."""
    after = before = 0.0
    for run in tails:
        losers = run["results"]["gateway-hedged"]["hedge_losers"] or {}
        after += losers.get("cut", 0.0)
        before += losers.get("cut", 0.0) + losers.get("finished", 0.0)
    lines = [line for line in table.splitlines() if "hedged pairs" in line]
    return {
        "churn_after": f"{after:,.0f}",
        "churn_before": f"{before:,.0f}",
        "churn_verdict": _verdict(after <= before / 2),
        "hedge_lines": "\n".join(f"    {line}" for line in lines),
    }


def _tail_figures(tail: dict[str, Any]) -> tuple[float, float]:
    """How many times lower the hedged p99 is, and the fraction of extra shard calls."""
    plain, hedged = tail["results"]["gateway-plain"], tail["results"]["gateway-hedged"]
    extra = hedged["shard_calls_per_request"] / plain["shard_calls_per_request"] - 1
    return plain["latency_ms"]["99.0"] / hedged["latency_ms"]["99.0"], extra


def _generator_reading(ratio: float) -> str:
    if ratio < 0.95:
        return "the Python generator uses more CPU per request than wrk: the ratio under 1"
    if ratio <= 1.05:
        return "the two keep up alike"
    return (
        "here wrk's run was the slower one: two runs on two shared cores differ by that much, "
        "and the generator is not what limits the figures below"
    )


def _layout_name(layout: str) -> str:
    return "a process per shard" if layout == "1" else f"{layout} shards per process"


def _half_figures(half: dict[str, dict[str, Any]]) -> dict[str, str]:
    rows, tables = [], []
    for layout, run in half.items():
        name = _layout_name(layout)
        for variant, label in ((FAN_OUT_VARIANT, "this gateway"), ("floor", "the floor")):
            latency = run["results"][variant]["latency_ms"]
            idle = run["idle"]["results"][variant]["latency_ms"]
            rows.append(
                f"| {name} | {label} | {run['saturation']:.0f} /s | {run['rate']} /s | "
                f"{latency['50.0']:.1f} ms | {latency['99.0']:.1f} ms | "
                f"{idle['50.0']:.1f} ms | {idle['99.0']:.1f} ms |"
            )
        tables.append(f"{name}:\n\n```\n{run['table']}\n```")
    one, packed = half["1"]["results"], half["20"]["results"]

    def p99(run: dict[str, Any], variant: str) -> str:
        return f"{run[variant]['latency_ms']['99.0']:.0f}"

    return {
        "half_gateway_p99_1": p99(one, FAN_OUT_VARIANT),
        "half_gateway_p99_20": p99(packed, FAN_OUT_VARIANT),
        "half_floor_p99_1": p99(one, "floor"),
        "half_floor_p99_20": p99(packed, "floor"),
        "half_rows": "\n".join(rows),
        "half_tables": "\n\n".join(tables),
        "half_gateway_cpu": f"{one[FAN_OUT_VARIANT]['cpu_ms_per_answer']:.1f}",
        "half_floor_cpu": f"{one['floor']['cpu_ms_per_answer']:.1f}",
        "half_shards_cpu_1": f"{one[FAN_OUT_VARIANT]['shards_cpu_ms_per_answer']:.1f}",
        "half_shards_cpu_20": f"{packed[FAN_OUT_VARIANT]['shards_cpu_ms_per_answer']:.1f}",
    }


def _calibration_figures(calibration: dict[str, Any]) -> dict[str, str]:
    report = calibration["report"]
    rows = {row["layer"]: row["percentiles_ms"] for row in report["rows"]}
    requested, injected = rows["requested (the model)"], rows["injected at the shard"]
    served, observed = rows["served by the shard"], rows["observed by the gateway"]
    predicted, client = rows["slowest of N (the model)"], rows["observed by the client"]
    gateway = rows["gateway's own time"]
    load = report["load"]
    return {
        "calibration_command": calibration["command"],
        "calibration_table": calibration["table"],
        "calibration_models": ", ".join(report["models"]),
        "calibration_rate": f"{load['rate']:g}",
        "calibration_aggregates": f"{load['answers']:,}",
        "calibration_calls": f"{report['calls']:,}",
        "calibration_not_ok": f"{report['calls_not_ok']:,}",
        "injected_p99_share": f"{injected['99.0'] / requested['99.0']:.2f}",
        "shard_adds_p50": f"{served['50.0'] - injected['50.0']:.2f}",
        "platform_adds_p50": f"{observed['50.0'] - served['50.0']:.2f}",
        "platform_adds_p99": f"{observed['99.0'] - served['99.0']:.1f}",
        "predicted_p50": f"{predicted['50.0']:.1f}",
        "predicted_p99": f"{predicted['99.0']:.1f}",
        "gateway_p50": f"{gateway['50.0']:.1f}",
        "client_p50": f"{client['50.0']:.1f}",
        "client_p99": f"{client['99.0']:.1f}",
        "client_over_model": f"{client['50.0'] / predicted['50.0']:.2f}",
    }


def _shard_figures(shard: dict[str, Any]) -> dict[str, str]:
    r = shard["results"]
    ours, bare = r["shard"]["us_per_answer"], r["bare-asgi"]["us_per_answer"]
    figures = {
        "shard_command": shard["command"],
        "shard_table": shard_cost.table(r),
        "shard_us": f"{ours:.1f}",
        "bare_us": f"{bare:.1f}",
        "shard_vs_bare": f"{ours / bare:.2f}",
        "shard_verdict": _verdict(ours <= bare),
        "former_us": f"{r['starlette-route-shard']['us_per_answer']:.1f}",
        "former_ratio": f"{r['starlette-route-shard']['us_per_answer'] / ours:.1f}",
    }
    nginx = r.get("nginx")
    figures["shard_vs_c"] = (
        "not measured (no nginx on this machine)"
        if nginx is None
        else f"{ours / nginx['us_per_answer']:.1f}x nginx's {nginx['us_per_answer']:.1f} µs"
    )
    return figures


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
    met = worst >= 0.9 and worst_p99 <= 2000
    figures["overload_verdict"] = _verdict(met)
    ten = r["gateway 10x"]
    figures["overload_bound"] = (
        ""
        if met
        else (
            f" At 10 x the gateway's 2xx p99 is {ten['ok_latency_ms']['99.0']:.0f} ms and it "
            f"serves {ten['throughput'] / peak:.0%} of its peak: what it admits waits for "
            "permits up to half of GATEWAY_PERMIT_WAIT_MS, and what bounds the rest is the "
            "shards' capacity the permits stand for."
        )
    )
    return figures


class _Tally(NamedTuple):
    statuses: Counter[str]
    answers: int
    errors: int  # failed opens and failed requests
    late: int  # answers past the deadline
    slowest_ms: tuple[float, float]  # of the first requests, of the second ones


def _tally(clients: list[dict[str, Any]]) -> _Tally:
    """What one or more outputs of benchmarks/connections.py add up to, both phases."""
    phases = [client[phase] for client in clients for phase in ("first", "again")]
    statuses: Counter[str] = Counter()
    for phase in phases:
        statuses.update(phase["statuses"])
    errors = sum(sum(client["open_errors"].values()) for client in clients) + sum(
        sum(phase["errors"].values()) for phase in phases
    )
    first, again = (
        max(((client[phase]["max_ms"] or 0.0) for client in clients), default=0.0)
        for phase in ("first", "again")
    )
    late = sum(phase["past_deadline"] for phase in phases)
    return _Tally(statuses, sum(statuses.values()), errors, late, (first, again))


def _connection_figures(connections: dict[str, Any]) -> dict[str, str]:
    claim, furthest = connections["runs"][0], connections["runs"][-1]
    phases = ("first", "again")
    rows = []
    for run in connections["runs"]:
        tally = _tally([run])
        rows.append(
            f"| {run['connections']:,} | {run['opened']:,} | {tally.answers:,} | "
            + ", ".join(f"{k}: {v:,}" for k, v in sorted(tally.statuses.items()))
            + f" | {tally.errors} | {tally.late} | "
            f"{tally.slowest_ms[0]:.0f} / {tally.slowest_ms[1]:.0f}"
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


def _cpu_figures(cpu: dict[str, Any]) -> dict[str, str]:
    """The refusal's cost, the closed-loop storm and the open loop past a CPU-bound peak."""
    shed, storm, overload = cpu["shed"], cpu["storm"], cpu["overload"]
    unpaced, paced = shed["door_503 unpaced"], shed["door_503 paced"]
    fastapi = shed["fastapi_healthz"]
    idle_per_answer = shed["idle_us_per_s"] * cpu["shed_seconds"] / max(1, paced["answers"])
    paced_net = paced["cpu_us_per_answer"] - idle_per_answer
    shed_rows = [
        f"| refused at the door, pacing off, {unpaced['connections']} connections | "
        f"{unpaced['answers']:,} | {unpaced['cpu_us_per_answer']:.1f} µs |",
        f"| refused at the door, paced (as shipped), {paced['connections']:,} connections | "
        f"{paced['answers']:,} | {paced['cpu_us_per_answer']:.1f} µs |",
        f"| `/healthz` through FastAPI, for scale, {fastapi['connections']} connections | "
        f"{fastapi['answers']:,} | {fastapi['cpu_us_per_answer']:.1f} µs |",
    ]
    storm_rows = []
    for name, run in storm.items():
        server, connections = name.split()
        statuses, errors, latency = run["statuses"], run["errors"], run["latency_ms"]
        sockets = errors["connect"] + errors["read"] + errors["write"]
        latencies = (
            " | ".join(f"{latency[q]:.0f}" for q in ("50", "99", "max"))
            if run["answers"]
            else "- | - | -"
        )
        storm_rows.append(
            f"| {server} | {int(connections):,} | {run['answers'] / run['duration_s']:,.0f} | "
            + " | ".join(f"{statuses.get(code, 0):,}" for code in ("200", "502", "503"))
            + f" | {errors['timeout']:,} | {sockets:,} | {latencies} |"
        )
    gateway, seed = storm["gateway 2000"], storm["seed 2000"]
    storm_met = gateway["errors"]["timeout"] == 0 and gateway["latency_ms"]["99"] <= 1500
    shed_share = gateway["statuses"].get("503", 0) / max(1, gateway["answers"])
    rate = gateway["answers"] / gateway["duration_s"]
    storm_reading = (
        f"At 2,000 connections the gateway answered {rate:,.0f} requests a second, "
        f"{shed_share:.0%} of them refused at the door, the rest the "
        f"aggregates its workers could serve in time; the pacing is what keeps the "
        f"refused clients from taking every cycle, and their wait is most of the p50 "
        f"({gateway['latency_ms']['50']:.0f} ms). The seed, which admits everything, "
        + (
            f"answered {seed['answers'] / seed['duration_s']:,.0f} a second and left "
            f"{seed['errors']['timeout']:,} requests with no answer after 3 s."
            if seed["answers"]
            else "answered nothing at all in the run (wrk counts no timeout for requests "
            "still unanswered when it ends)."
        )
    )
    r = overload["results"]
    peak = r["gateway"]["throughput"]
    shares = {m: r[f"gateway {m}x"]["throughput"] / peak for m in (2, 10)}
    p99s = {m: r[f"gateway {m}x"]["ok_latency_ms"]["99.0"] or 0.0 for m in (2, 10)}
    seed_peak = r["seed"]["throughput"]
    seed_shares = {m: r[f"seed {m}x"]["throughput"] / seed_peak for m in (2, 10)}
    cpu_met = min(shares.values()) >= 0.8 and max(p99s.values()) <= 2000
    ten = r["gateway 10x"]
    reading = (
        f"The gateway serves {shares[2]:.0%} of its peak at 2 x and {shares[10]:.0%} at "
        f"10 x (2xx p99 {p99s[2]:.0f} and {p99s[10]:.0f} ms); the seed {seed_shares[2]:.0%} "
        f"and {seed_shares[10]:.0%}."
    )
    if not cpu_met:
        reading += (
            f" What bounds it at 10 x: {ten['errors'].get('HTTP 503', 0) / ten['duration_s']:,.0f} "
            "refusals a second, the load generator's requests and the kernel's work for "
            "both all come out of the same two cores as the aggregates, so fewer cycles "
            "are left for them than at the peak."
        )
    return {
        "shed_seconds": str(cpu["shed_seconds"]),
        "shed_table": "\n".join(shed_rows),
        "shed_unpaced": f"{unpaced['cpu_us_per_answer']:.1f}",
        "shed_paced_net": f"{paced_net:.1f}",
        "shed_idle": f"{shed['idle_us_per_s']:,.0f}",
        "shed_fastapi": f"{fastapi['cpu_us_per_answer']:.0f}",
        "shed_verdict": _verdict(unpaced["cpu_us_per_answer"] <= 50 and paced_net <= 50),
        "cpu_storm_command": gateway["command"],
        "cpu_storm_table": "\n".join(storm_rows),
        "cpu_storm_verdict": _verdict(storm_met),
        "cpu_storm_reading": storm_reading,
        "cpu_overload_command": overload["command"],
        "cpu_overload_table": overload["table"],
        "cpu_overload_verdict": _verdict(cpu_met),
        "cpu_overload_reading": reading,
    }


def _spread_figures(spread: dict[str, Any]) -> dict[str, str]:
    """benchmarks/connections.py from several processes and addresses, per server."""
    rows, held = [], {}
    for name, run in spread["runs"].items():
        clients = [client for client in run["clients"] if "failed" not in client]
        failed = [client["failed"] for client in run["clients"] if "failed" in client]
        tally = _tally(clients)
        statuses, errors = tally.statuses, tally.errors
        memory = max((client["held"] for client in clients), key=lambda m: m["pss_bytes"],
                     default={"pss_bytes": 0, "open_fds": 0})  # fmt: skip
        opened = sum(client["opened"] for client in clients)
        held[name] = (opened, statuses, errors, memory, run["idle"], failed)
        failure = (
            f" ({len(failed)} of {len(run['clients'])} client processes failed)" if failed else ""
        )
        rows.append(
            f"| {name}{failure} | {opened:,} | {tally.answers:,} | "
            + (", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items())) or "none")
            + f" | {errors:,} | {tally.late:,} | "
            f"{tally.slowest_ms[0]:.0f} / {tally.slowest_ms[1]:.0f} | {memory['open_fds']:,} | "
            f"{run['idle']['pss_bytes'] / MIB:.0f}, {memory['pss_bytes'] / MIB:.0f} |"
        )
    total = spread["total"]
    opened, statuses, errors, memory, idle, _ = held["gateway"]
    per_connection = (memory["pss_bytes"] - idle["pss_bytes"]) / max(1, opened)
    answers = sum(statuses.values())
    met = opened == total and errors == 0 and answers == 2 * total
    refused = answers - statuses.get("200", 0)
    reading = (
        f"Target: {total:,} connections held and every one answered twice: "
        f"{_verdict(met)}. The gateway held {opened:,} with {spread['workers']} workers and "
        f"answered {answers:,} requests, {statuses.get('200', 0) / max(1, answers):.1%} of "
        f"them 200 and {refused:,} refused with a 503 (as new connections arrived "
        f"{spread['rate'] * len(spread['runs']['gateway']['clients']):,} a second, each with "
        f"its request), its memory going from {idle['pss_bytes'] / MIB:.0f} to "
        f"{memory['pss_bytes'] / MIB:.0f} MiB PSS: {per_connection / 1024:.1f} KiB per "
        "connection."
    )
    _, seed_statuses, seed_errors, _, _, seed_failed = held["seed"]
    seed_ok = seed_statuses.get("200", 0)
    reading += (
        f" The seed answered {seed_ok:,} of the {2 * total:,} requests 200"
        + (f", with {seed_errors:,} socket errors" if seed_errors else "")
        + (
            f"; {len(seed_failed)} client processes failed outright "
            f"(the last thing one printed: `{seed_failed[0].splitlines()[-1][:160]}`)"
            if seed_failed
            else ""
        )
        + "."
    )
    first = next(iter(spread["runs"].values()))
    return {
        "spread_command": first["command"],
        "spread_processes": str(len(first["clients"])),
        "spread_total": f"{total:,}",
        "spread_rate": f"{spread['rate'] * len(first['clients']):,}",
        "spread_workers": str(spread["workers"]),
        "spread_table": "\n".join(rows),
        "spread_reading": reading,
    }


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _tail_model(q: float, hedged: bool, shards: int = 20) -> float:
    """The aggregate's q-quantile (ms) from `bench tail`'s latency model alone: the slowest of
    `shards` shards of that Pareto model, each, if `hedged`, also sent again at the quantile
    the gateway hedges at by default (1 - half its default hedge budget: p95)."""
    model = parse_latency(TAIL_LATENCY)
    assert isinstance(model, ParetoLatency), TAIL_LATENCY
    scale, alpha = model.scale_ms, model.alpha
    budget = GatewaySettings.model_fields["hedge_budget"].default
    hedge_at = model.quantile_ms(1 - budget / 2)

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


def _outcomes(result: dict[str, Any]) -> dict[str, int]:
    """Aggregates by what the client got: complete, partial, failed (502), shed (503),
    and no answer (a timeout or a broken connection)."""
    errors = result["errors"]
    http = {kind: n for kind, n in errors.items() if kind.startswith("HTTP ")}
    partial = errors.get("partial", 0)
    return {
        "complete": result["answers"] - sum(http.values()) - partial,
        "partial": partial,
        "failed": http.get("HTTP 502", 0),
        "shed": http.get("HTTP 503", 0),
        "unanswered": sum(
            n for kind, n in errors.items() if kind not in http and kind != "partial"
        ),
    }


def _backend_row(label: str, run: dict[str, Any]) -> str:
    result = run["result"]
    latency = result["latency_ms"]
    outcomes = _outcomes(result)
    calls = run["shard_calls_per_request"]
    return (
        f"| {label} | {result['answers'] / result['duration_s']:.1f} | {outcomes['complete']} | "
        f"{outcomes['partial']} | {outcomes['failed']} | {outcomes['shed']} | "
        f"{outcomes['unanswered']} | {latency['50.0']:.0f} | {latency['99.0']:.0f} | "
        f"{run['queue_depth_mean']:.1f} / {run['queue_depth_max']:.0f} | "
        f"{run['refused']:.0f} | {run['retries']:.0f} | {run['hedges']:.0f} | "
        f"{'-' if calls is None else f'{calls:.1f}'} |"
    )


_BACKEND_HEADER = (
    "| gateway | answers/s | complete | partial | failed 502 | shed 503 | no answer | "
    "p50 ms | p99 ms | shard queue mean / max | shard refusals | retries | hedges | "
    "shard calls per request |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def backend_table(runs: dict[str, Any], labels: dict[str, str]) -> str:
    rows = [_backend_row(labels[key], run) for key, run in runs.items()]
    return "\n".join([_BACKEND_HEADER, *rows])


def _p99(run: dict[str, Any]) -> float:
    return float(run["result"]["latency_ms"]["99.0"])


def _backend_figures(backends: dict[str, Any]) -> dict[str, str]:
    capacity, storm, loss = backends["capacity"], backends["storm"], backends["loss"]
    sized, large = capacity["40"], capacity["400"]
    unbudgeted, budgeted = storm["unbudgeted"], storm["budgeted"]
    lenient, strict = loss["min_ok=1"], loss["min_ok=16"]

    def more_or_fewer(a: float, b: float) -> str:
        return "more" if a > b else "fewer" if a < b else "as many"

    return {
        "capacity_command": sized["command"],
        "capacity_table": backend_table(
            capacity, {"40": "semaphore 40 (the shards' capacity)", "400": "semaphore 400 (10 x)"}
        ),
        "capacity_p99_ratio": f"{_p99(large) / _p99(sized):.1f}",
        "capacity_refused": f"{large['refused']:.0f}",
        "capacity_sized_refused": f"{sized['refused']:.0f}",
        "capacity_refusal_words": more_or_fewer(large["refused"], sized["refused"]),
        "storm_command": unbudgeted["command"],
        "storm_table": backend_table(
            storm, {"unbudgeted": "retries and hedges unbudgeted", "budgeted": "budgets of 10 %"}
        ),
        "storm_calls": f"{unbudgeted['shard_calls_per_request']:.1f}",
        "storm_budgeted_calls": f"{budgeted['shard_calls_per_request']:.1f}",
        "storm_refusal_words": more_or_fewer(unbudgeted["refused"], budgeted["refused"]),
        "loss_command": lenient["command"],
        "loss_table": backend_table(
            loss, {"min_ok=1": "min_ok=1 (default)", "min_ok=16": "min_ok=16"}
        ),
        "loss_partial": f"{_outcomes(lenient['result'])['partial']}",
        "loss_failed": f"{_outcomes(strict['result'])['failed']}",
    }


_TEMPLATE = (Path(__file__).with_name("page_template.md")).read_text()
