"""Tables for the terminal and for docs/benchmarks.md, from measurements."""

from __future__ import annotations

import math
from collections.abc import Sequence

from shardstack.bench.calibrate import Calibration
from shardstack.bench.measure import Measurement
from shardstack.bench.overload import OverloadRun
from shardstack.bench.recording import PERCENTILES

MIB = 1024 * 1024


def table(
    measurements: Sequence[Measurement], ratios_to: Sequence[str] = (), markdown: bool = False
) -> str:
    """One row per measurement; for each name in `ratios_to`, throughput as a multiple of it."""
    by_name = {m.name: m for m in measurements}
    bases = [name for name in ratios_to if name in by_name]
    with_shards = any(m.shards_cpu_s is not None for m in measurements)
    header = [
        "variant",
        "answers/s",
        *(f"p{p:g} ms" for p in PERCENTILES),
        "errors",
        "CPU ms/answer",
        "peak RSS MiB",
        *(["shards CPU ms/answer", "shard calls/request"] if with_shards else []),
        *(f"x {name}" for name in bases),
    ]
    rows = []
    for m in measurements:
        percentiles = m.recording.percentiles_ms()
        cpu = m.cpu_ms_per_answer()
        rows.append(
            [
                m.name,
                f"{m.recording.throughput():.1f}",
                *(_ms(percentiles[p]) for p in PERCENTILES),
                errors(m),
                _number(cpu),
                "-" if m.peak_rss is None else f"{m.peak_rss / MIB:.0f}",
                *(
                    [_number(m.shards_cpu_ms_per_answer()), _number(m.shard_calls_per_request())]
                    if with_shards
                    else []
                ),
                *(_ratio(m, by_name[name]) for name in bases),
            ]
        )
    return _markdown(header, rows) if markdown else _aligned(header, rows)


def hedge_lines(measurements: Sequence[Measurement]) -> list[str]:
    """For each hedging variant, what became of its hedges' losing calls, and the
    connections that cost (on HTTP/1.1 a call cancelled mid-flight closes its own)."""
    lines = []
    for m in measurements:
        losers = m.hedge_losers
        if not losers:
            continue
        ended, finished, cut = (int(losers.get(fate, 0)) for fate in ("ended", "finished", "cut"))
        lines.append(
            f"{m.name}: of {ended + finished + cut:,} hedged pairs, the loser had failed first "
            f"in {ended:,}, ran on to its answer in {finished:,} and was cut at its deadline "
            f"in {cut:,}: {cut:,} connections closed for hedges (cancelling each loser at the "
            f"answer would close {finished + cut:,})"
        )
    return lines


def overload_table(runs: Sequence[OverloadRun], markdown: bool = False) -> str:
    """Per variant its peak, then each overload: goodput against the peak, the latency of
    what was served, and the rate and latency of what was refused (503)."""
    header = [
        "variant", "offered", "goodput/s", "of peak", "2xx p50 ms", "2xx p99 ms",
        "503/s", "503 p99 ms", "other errors", "CPU ms/answer",
    ]  # fmt: skip
    rows = []
    for run in runs:
        for m in (run.peak, *run.overloaded):
            recording = m.recording
            ok = recording.percentiles_ms(recording.ok_latency)
            shed = recording.percentiles_ms(recording.shed_latency)
            shed_rate = recording.statuses[503] / recording.elapsed_s if recording.elapsed_s else 0
            others = {k: n for k, n in recording.errors().items() if k != "HTTP 503"}
            of_peak = run.of_peak(m)
            rows.append(
                [
                    m.name,
                    f"closed, -c {m.plan.connections}" if m.plan.rate is None
                    else f"{m.plan.rate:.1f}/s",
                    f"{recording.throughput():.1f}",
                    "-" if of_peak is None else f"{of_peak:.0%}",
                    _ms(ok[50.0]),
                    _ms(ok[99.0]),
                    f"{shed_rate:.1f}",
                    _ms(shed[99.0]),
                    ", ".join(f"{k} {n}" for k, n in others.items()) or "0",
                    _number(m.cpu_ms_per_answer()),
                ]
            )  # fmt: skip
    return _markdown(header, rows) if markdown else _aligned(header, rows)


def calibration_table(calibration: Calibration, markdown: bool = False) -> str:
    """Per call and per aggregate, the model's percentiles, then each layer's, with its
    p50 and p99 as multiples of the model's."""
    header = ["", "layer", *(f"p{p:g} ms" for p in PERCENTILES), "p50 x", "p99 x", "count"]
    rows = []
    model: dict[float, float] = {}
    for part, layer, values, count in calibration.rows():
        if not count:  # the model's own row heads its part
            model = values
        rows.append(
            [
                part,
                layer,
                *(_ms(values[p]) for p in PERCENTILES),
                *(_times(values[p], model[p]) if count else "" for p in (50.0, 99.0)),
                f"{count:,}" if count else "",
            ]
        )
    return _markdown(header, rows) if markdown else _aligned(header, rows, left=2)


def _times(value: float, model: float) -> str:
    if math.isnan(value) or math.isnan(model) or model <= 0:
        return "-"
    return f"{value / model:.2f}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def errors(m: Measurement) -> str:
    errors = m.recording.errors()
    if not errors:
        return "0"
    return ", ".join(f"{kind} {count}" for kind, count in errors.items())


def _ratio(m: Measurement, base: Measurement) -> str:
    base_rate = base.recording.throughput()
    if not base_rate:
        return "-"
    return f"{m.recording.throughput() / base_rate:.2f}"


def _aligned(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Columns padded to width: the first `left` to the left, the figures to the right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
