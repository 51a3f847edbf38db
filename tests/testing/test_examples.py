"""examples/fanout as its page says: its tests, run by pytest in the example's own
project against shards the plugin starts, fail the seed's service on the deadline and
pass the one with a deadline and partial results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "fanout"

pytestmark = pytest.mark.timeout(300)


def test_the_seed_service_misses_the_deadline_and_the_fixed_one_keeps_it() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA"],
        cwd=EXAMPLE, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr
    outcomes = {
        line.split()[1]: line.split()[0]
        for line in run.stdout.splitlines()
        if line.startswith(("PASSED ", "FAILED "))
    }
    name = "test_services.py::test_one_slow_shard_costs_its_part_not_the_deadline"
    assert outcomes == {
        f"{name}[seed]": "FAILED",
        f"{name}[deadline]": "PASSED",
        "test_services.py::test_every_shard_is_asked_once[seed]": "PASSED",
        "test_services.py::test_every_shard_is_asked_once[deadline]": "PASSED",
    }
    assert "answered after 1." in run.stdout  # the seed's waited for the slowed shard
