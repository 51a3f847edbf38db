"""Latency from measurements: a model given by percentiles, and one resampled from a file
of observed latencies or a histogram's buckets, read from one directory only; both seeded,
both refused by name when bad."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from shardstack_kernel.faults import parse_request_fault
from shardstack_kernel.latency import EmpiricalLatency, PercentilesLatency, parse_latency
from shardstack_kernel.latency_file import MAX_BYTES, MAX_LINES, LatencyFiles
from shardstack_kernel.validation import InvalidInput

DRAWS = 100_000


def _achieved(
    spec: str, draws: int = DRAWS, seed: int = 1, files: LatencyFiles | None = None
) -> dict[float, float]:
    """Nearest-rank percentiles of `draws` samples."""
    model = parse_latency(spec, files)
    rng = random.Random(seed)
    values = sorted(model.sample_ms(rng) for _ in range(draws))
    return {p: values[int(p / 100 * draws)] for p in (50.0, 90.0, 99.0, 99.9)}


def test_the_percentiles_asked_for_are_the_percentiles_drawn() -> None:
    spec = "percentiles:p50=5,p90=20,p99=80,p99.9=300"
    achieved = _achieved(spec)
    for p, ms in ((50.0, 5), (90.0, 20), (99.0, 80)):
        assert achieved[p] == pytest.approx(ms, rel=0.03), (p, achieved)
    # At p99.9, 100,000 independent draws leave a standard error of about 5 % with this
    # tail (100 draws above it); a million, about 1.6 %.
    assert _achieved(spec, draws=1_000_000)[99.9] == pytest.approx(300, rel=0.03)


def test_the_quantile_function_passes_through_every_point_and_stays_monotone() -> None:
    model = parse_latency("percentiles:p10=1,p50=5,p75=6,p99=80")
    assert isinstance(model, PercentilesLatency)
    for q, ms in ((0.10, 1), (0.50, 5), (0.75, 6), (0.99, 80)):
        assert model.quantile_ms(q) == pytest.approx(ms, rel=1e-9)
    grid = [model.quantile_ms(i / 10_000) for i in range(1, 10_000)]
    assert grid == sorted(grid)
    # Past the last point the tail keeps growing (the last piece's slope), toward zero below.
    assert model.quantile_ms(0.9999) > model.quantile_ms(0.999) > 80
    assert 0 < model.quantile_ms(0.001) < 1


def test_a_lognormal_given_by_its_percentiles_is_that_lognormal() -> None:
    lognormal = parse_latency("lognormal:5,80")
    points = ",".join(f"p{p:g}={lognormal.quantile_ms(p / 100):.6f}" for p in (50, 90, 99))
    model = parse_latency(f"percentiles:{points}")
    for q in (0.01, 0.3, 0.5, 0.95, 0.999, 0.99999):
        assert model.quantile_ms(q) == pytest.approx(lognormal.quantile_ms(q), rel=1e-4)


def test_p50_alone_is_a_fixed_delay() -> None:
    model = parse_latency("percentiles:p50=7")
    rng = random.Random(3)
    assert {model.sample_ms(rng) for _ in range(100)} == {7.0}


def test_the_same_seed_draws_the_same_delays(tmp_path: Path) -> None:
    observed = tmp_path / "observed.txt"
    observed.write_text("\n".join(str(i) for i in range(1, 501)))
    for spec in ("percentiles:p50=5,p99=80", "empirical:observed.txt"):
        model = parse_latency(spec, LatencyFiles(tmp_path))
        first, second = random.Random(11), random.Random(11)
        assert [model.sample_ms(first) for _ in range(50)] == [
            model.sample_ms(second) for _ in range(50)
        ]


def test_observed_latencies_are_resampled(tmp_path: Path) -> None:
    observed = tmp_path / "observed.txt"
    # 1..1000 ms once each, with a comment and blank lines as a user's file has them.
    observed.write_text("# from last week\n\n" + "\n".join(str(i) for i in range(1, 1001)))
    model = parse_latency(f"empirical:{observed}", LatencyFiles(tmp_path))
    assert isinstance(model, EmpiricalLatency)
    assert model.quantile_ms(0.5) == 500
    assert model.quantile_ms(0.99) == 990
    achieved = _achieved("empirical:observed.txt", files=LatencyFiles(tmp_path))
    for p in (50.0, 90.0, 99.0, 99.9):
        assert achieved[p] == pytest.approx(p * 10, rel=0.03), (p, achieved)
    rng = random.Random(2)
    assert {model.sample_ms(rng) for _ in range(1000)} <= set(range(1, 1001))


def test_a_histogram_s_cumulative_buckets_are_resampled(tmp_path: Path) -> None:
    buckets = tmp_path / "buckets.txt"
    # As Prometheus exports them: 50 % by 5 ms, 90 % by 20, 99 % by 80, all by 300.
    buckets.write_text("5 500.0\n20 900\n80,990\n300\t1000\n+Inf 1000\n")
    model = parse_latency(f"empirical:path={buckets}", LatencyFiles(tmp_path))
    for q, ms in ((0.5, 5), (0.9, 20), (0.99, 80), (1.0, 300)):
        assert model.quantile_ms(q) == pytest.approx(ms, rel=1e-9)
    # The share of draws at or below each bound is the bucket's (100,000 draws: the
    # binomial error is at most 0.16 %).
    rng = random.Random(5)
    draws = [model.sample_ms(rng) for _ in range(DRAWS)]
    for bound, share in ((5, 0.5), (20, 0.9), (80, 0.99), (300, 1.0)):
        assert sum(d <= bound for d in draws) / DRAWS == pytest.approx(share, abs=0.005)
    # Uniform inside a bucket: the median of the 5-20 ms bucket is 12.5 ms.
    assert model.quantile_ms(0.7) == pytest.approx(12.5)


def test_a_name_is_read_in_the_directory_and_the_file_is_what_the_model_holds(
    tmp_path: Path,
) -> None:
    files = LatencyFiles(tmp_path)
    (tmp_path / "observed.txt").write_text("1\n2\n")
    model = parse_latency("empirical:observed.txt", files)
    assert model.spec() == "empirical:path=observed.txt"
    assert model.model_dump() == {"model": "empirical", "path": "observed.txt"}
    (tmp_path / "observed.txt").write_text("7\n")
    assert parse_latency(model.spec(), files) != model  # the file changed: another model


def test_without_the_directory_a_model_only_names_its_file(tmp_path: Path) -> None:
    # As the gateway parses a fault before it forwards it: nothing is read.
    model = parse_latency("empirical:/etc/hostname")
    assert isinstance(model, EmpiricalLatency)
    assert model.model_dump() == {"model": "empirical", "path": "/etc/hostname"}
    with pytest.raises(RuntimeError, match="parsed without its file"):
        model.sample_ms(random.Random(1))


@pytest.mark.parametrize("outside", ["/etc/passwd", "/nonexistent/l.txt", "../l.txt", "link.txt"])
def test_a_path_outside_the_directory_is_refused_in_the_same_words_whether_it_exists(
    tmp_path: Path, outside: str
) -> None:
    root = tmp_path / "latencies"
    root.mkdir()
    (tmp_path / "l.txt").write_text("5\n")
    (root / "link.txt").symlink_to(tmp_path / "l.txt")
    with pytest.raises(InvalidInput) as caught:
        parse_latency(f"empirical:{outside}", LatencyFiles(root))
    [error] = caught.value.errors
    assert (error.field, error.reason) == (
        "path",
        f"{outside!r} is outside the latency directory (SHARD_LATENCY_DIR)",
    )


def test_a_fifo_is_refused_at_once_rather_than_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    started = time.monotonic()
    with pytest.raises(InvalidInput, match=r"'pipe\.txt' is not a regular file"):
        parse_latency("empirical:pipe.txt", LatencyFiles(tmp_path))
    # Opened without blocking: nothing waits for a writer (generous for a loaded machine).
    assert time.monotonic() - started < 5


def test_files_past_the_size_or_line_bounds_are_refused(tmp_path: Path) -> None:
    files = LatencyFiles(tmp_path)
    with (tmp_path / "big.txt").open("wb") as big:
        big.truncate(MAX_BYTES + 1)  # sparse: nothing written, yet too big to be read
    with pytest.raises(InvalidInput, match="larger than 4 MiB"):
        parse_latency("empirical:big.txt", files)
    (tmp_path / "long.txt").write_text("1\n" * (MAX_LINES + 1))
    with pytest.raises(InvalidInput, match="more than 200,000 lines"):
        parse_latency("empirical:long.txt", files)


def test_a_per_request_fault_takes_no_empirical_latency() -> None:
    with pytest.raises(InvalidInput, match="an empirical latency reads a file"):
        parse_request_fault(["latency", "latency=empirical:two-modes.txt"])


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ("percentiles:p90=20", "p50", "required"),
        ("percentiles:p50=5,p90=3", "p90", "must be more than p50 (5 ms)"),
        ("percentiles:p50=5,p99=80,p99.9=80", "p99.9", "must be more than p99 (80 ms)"),
        ("percentiles:p50=5,p100=9", "p100", "between 0 and 100"),
        ("percentiles:p0=1,p50=5", "p0", "between 0 and 100"),
        ("percentiles:p50=0", "p50", "more than 0"),
        ("percentiles:p50=soon", "p50", "not a number"),
        ("percentiles:p50=5,median=5", "median", "not a percentile"),
        ("percentiles:5,20", "model", "name=value pairs"),
        ('{"model": "percentiles", "p50": 5, "p90": "inf"}', "p90", "more than 0"),
    ],
)
def test_bad_percentiles_are_refused_naming_the_field(spec: str, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_latency(spec)
    [error] = caught.value.errors
    assert (error.field, reason in error.reason) == (field, True), error


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "no latencies in the file"),
        ("# only a comment\n\n", "no latencies in the file"),
        ("5\nroot:x:0:0\n", "line 2: not a number of milliseconds"),
        ("5\n-1\n", "line 2: a latency is from 0 to"),
        ("5\n6 7\n", "line 2: one latency a line"),
        ("5 10\n3 20\n", "line 2: bounds must increase"),
        ("5 10\n8 4\n", "line 2: counts are cumulative"),
        ("5 10\n8 1.5\n", "line 2: a bucket's count is a whole number"),
        ("5 10\n+Inf 12\n", "line 2: +Inf holds observations past every bound"),
        ("+Inf 0\n5 1\n", "line 1: +Inf can only be the last bucket"),
        ("5 0\n9 0\n", "the buckets hold no observations"),
        (b"\xff\xfe", "cannot read"),
    ],
)
def test_bad_files_are_refused_by_line_without_echoing_them(
    tmp_path: Path, content: str | bytes, reason: str
) -> None:
    path = tmp_path / "observed.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(InvalidInput) as caught:
        parse_latency("empirical:observed.txt", LatencyFiles(tmp_path))
    [error] = caught.value.errors
    assert error.field == "path"
    assert reason in error.reason
    assert "root:x" not in error.reason


def test_a_missing_file_or_a_directory_in_the_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name, reason in (("none.txt", "no file 'none.txt'"), ("sub", "'sub' is a directory")):
        with pytest.raises(InvalidInput) as caught:
            parse_latency(f"empirical:{name}", LatencyFiles(tmp_path))
        assert reason in str(caught.value)
