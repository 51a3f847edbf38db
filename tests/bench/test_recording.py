"""What a load run records and how it is shown: percentiles from the HDR histograms,
errors by kind, throughput of complete answers, and the tables with their ratios."""

from __future__ import annotations

import math

import pytest

from shardstack.bench.load import LoadPlan
from shardstack.bench.measure import Measurement
from shardstack.bench.recording import Recording
from shardstack.bench.tables import table


def _recording(ms: list[float], elapsed_s: float = 2.0) -> Recording:
    recording = Recording(elapsed_s=elapsed_s)
    for value in ms:
        recording.answered(200, value / 1000.0, partial=False)
    return recording


def test_percentiles_come_from_every_answer_to_three_digits() -> None:
    recording = _recording([float(value) for value in range(1, 1001)])
    percentiles = recording.percentiles_ms()
    assert percentiles[50.0] == pytest.approx(500, rel=1e-3)
    assert percentiles[99.0] == pytest.approx(990, rel=1e-3)
    assert percentiles[99.9] == pytest.approx(999, rel=1e-3)
    assert all(math.isnan(value) for value in Recording().percentiles_ms().values())


def test_errors_partials_and_throughput_count_only_complete_2xx_answers() -> None:
    recording = _recording([5.0] * 8)
    recording.answered(200, 0.005, partial=True)
    recording.answered(503, 0.001, partial=False)
    recording.failed("timeout")
    assert (recording.sent, recording.answers, recording.ok) == (11, 10, 9)
    assert recording.errors() == {"HTTP 503": 1, "partial": 1, "timeout": 1}
    assert recording.throughput() == pytest.approx(8 / 2.0)
    assert recording.shed_latency.get_total_count() == 1


def test_the_table_gives_each_variant_a_row_and_its_ratio_to_the_baseline() -> None:
    plan = LoadPlan("http://127.0.0.1:1/api/aggregate", connections=4)
    fast = Measurement("gateway", plan, _recording([2.0] * 300), cpu_s=0.6, peak_rss=80 << 20)
    slow = Measurement("seed", plan, _recording([20.0] * 30), cpu_s=0.3)
    lines = table([fast, slow], ratios_to=("seed", "floor")).splitlines()
    assert lines[0].split()[:2] == ["variant", "answers/s"]
    assert lines[0].rstrip().endswith("x seed")  # no floor measured: no column for it
    gateway, seed = (line.split() for line in lines[1:])
    assert gateway[0] == "gateway"
    assert gateway[1] == "150.0"
    assert gateway[-1] == "10.00"
    assert seed[-1] == "1.00"
    assert "2.00" in gateway  # CPU ms per answer: 0.6 s over 300 answers
