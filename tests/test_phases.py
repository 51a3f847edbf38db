"""`make unit`'s two phases (tests/phases.py): a parallel worker never takes a test that must
have the machine alone, and the runner runs both and names the slowest tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import without_coverage

ROOT = Path(__file__).parents[1]
# The suite's own cache is another run's: these leave it alone.
NO_CACHE = ("-p", "no:cacheprovider")


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=without_coverage(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_runner_runs_both_phases_and_lists_the_slowest_tests() -> None:
    run = _run("-m", "tests.phases", *NO_CACHE, "tests/test_tiers.py")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    shared, alone = run.stdout.split("== alone phase")
    assert "--phase=shared" in shared
    assert " -n " not in shared  # one worker unless asked (make unit WORKERS=N)
    assert " passed" in shared
    # Nothing in that file must run alone: the second phase selects none, no failure.
    assert "deselected" in alone or "no tests ran" in alone
    slowest = run.stdout.split("slowest tests")[1].strip().splitlines()[1:]
    assert slowest
    assert all("tests/test_tiers.py::" in line for line in slowest), slowest


def test_on_parallel_workers_a_module_stays_on_one_and_a_test_that_must_run_alone_fails() -> None:
    # The groups are what keep a module's processes (and the Docker images) made once;
    # pytest 9.2 with pytest-xdist 3.8 drops them without a word (pytest-dev/pytest-xdist#1386).
    module, alone = "tests/shard_sim/test_settings.py", "tests/e2e/test_capacity.py"
    run = _run("-m", "pytest", *NO_CACHE, "-n", "2", "--dist", "loadgroup", "-v", module, alone)
    assert run.returncode == 1, run.stdout[-3000:]
    ran = [line.split() for line in run.stdout.splitlines() if " PASSED " in line]
    assert len(ran) > 2
    assert len({words[0] for words in ran}) == 1, ran  # one worker: [gw0] or [gw1]
    assert all(words[-1].endswith("@shard_sim/test_settings.py") for words in ran), ran
    assert "must run alone, not on parallel workers (-n)" in run.stdout
    assert f"{len(ran)} passed, 1 error" in run.stdout.splitlines()[-1]


def test_the_docker_and_browser_tiers_run_only_in_the_phase_alone() -> None:
    def collected(phase: str) -> str:
        run = _run("-m", "pytest", *NO_CACHE, "--collect-only", "-q", f"--phase={phase}",
                   "-m", "docker or browser")  # fmt: skip
        return run.stdout.strip().splitlines()[-1]

    assert collected("shared").startswith("no tests collected")
    selected = int(collected("alone").split("/")[0])
    assert selected >= 15  # the compose, swarm, image and panel tests
