"""The package as a user installs it: a wheel built from this tree, installed into a new
virtual environment, runs the stack from an empty directory, with nothing of the
checkout on its path (the gunicorn configuration, Prometheus's rules and the bench
baselines ship inside it)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shardstack_kernel.topology import ADMIN_PORT_OFFSET
from tests.support import HOST, free_port_block, require_binary, wait_until

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).parents[2]
SHARDS = 2
# The top-level packages the wheel is made of, as pyproject.toml lists them.
PACKAGES = [
    pattern.removesuffix("*")
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin` directory of a new venv holding only the wheel and its dependencies."""
    work = tmp_path_factory.mktemp("installed")
    # Built from a copy of what the package is made of, so the build leaves nothing here.
    source = work / "source"
    for name in PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = work / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(source))  # fmt: skip
    [wheel] = wheels.glob("shardstack-*.whl")
    _run(sys.executable, "-m", "venv", str(work / "venv"))
    bin_dir = work / "venv" / "bin"
    _run(str(bin_dir / "pip"), "install", "--quiet", "-c", str(ROOT / "constraints.txt"),
         str(wheel))  # fmt: skip
    return bin_dir


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"


def _clean_env(bin_dir: Path, tmp_path: Path) -> dict[str, str]:
    """This environment without the checkout: no PYTHONPATH, the new venv first on PATH."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {**env, "PATH": f"{bin_dir}:{env['PATH']}", "XDG_STATE_HOME": str(tmp_path)}


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_the_installed_package_runs_the_stack_from_an_empty_directory(
    installed: Path, empty_dir: Path, tmp_path: Path
) -> None:
    base = free_port_block(SHARDS + 2, also_at=ADMIN_PORT_OFFSET)
    gateway_port, prometheus_port = base + SHARDS, base + SHARDS + 1
    stderr_path = tmp_path / "up.err"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(installed / "shardstack"), "up", "--shards", str(SHARDS),
             "--port", str(gateway_port), "--shard-base-port", str(base),
             "--prometheus", require_binary("prometheus"),
             "--prometheus-port", str(prometheus_port)],
            cwd=empty_dir, env=_clean_env(installed, tmp_path), stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    try:
        _wait_for(lambda: "Press Ctrl-C to stop." in stderr_path.read_text(), process)
        answer = httpx.get(f"http://{HOST}:{gateway_port}/api/aggregate", timeout=10)
        assert answer.status_code == 200
        assert answer.json()["status"] == "complete"
        # Prometheus loaded the recording rules the package ships.
        rules = httpx.get(f"http://{HOST}:{prometheus_port}/api/v1/rules", timeout=10).json()
        assert any(group["rules"] for group in rules["data"]["groups"])
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    assert code == 0, stderr_path.read_text()
    assert list(empty_dir.iterdir()) == []


def test_the_installed_bench_commands_and_baselines_are_there(
    installed: Path, empty_dir: Path, tmp_path: Path
) -> None:
    env = _clean_env(installed, tmp_path)
    helped = subprocess.run(
        [str(installed / "shardstack"), "bench", "compare", "--help"],
        cwd=empty_dir, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    assert "--variants" in helped.stdout
    # What `bench compare` serves under gunicorn, imported the way gunicorn imports it.
    imported = subprocess.run(
        [str(installed / "python"), "-c",
         "import shardstack.bench.baselines.seed as s, shardstack.bench.baselines.floor as f;"
         "import gateway.gunicorn_conf; print(type(s.app).__name__, type(f.app).__name__)"],
        cwd=empty_dir, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["FastAPI", "function"]


def _wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], timeout_s: float = 90
) -> None:
    def up() -> bool:
        assert process.poll() is None, "shardstack up exited"
        return condition()

    wait_until(up, timeout_s, "shardstack up ready")


PROJECT_TEST = """
import httpx
import pytest


def answered(urls, timeout_s):
    \"\"\"The service under test: the shards that answered within the timeout.\"\"\"
    found = []
    for url in urls:
        try:
            httpx.get(url + "/data", timeout=timeout_s)
        except httpx.TimeoutException:
            continue
        found.append(url)
    return found


@pytest.mark.shards(count=3, latency="fixed:5")
def test_a_slow_shard_is_left_out(shard_fleet):
    shard_fleet.inject(1, "latency", latency="fixed:3000", duration_s=60)
    urls = shard_fleet.urls
    assert answered(urls, 1.0) {relation} [urls[0], urls[2]]
"""


@pytest.mark.parametrize(("relation", "outcome"), [("==", "1 passed"), ("!=", "1 failed")])
def test_the_installed_plugin_gives_a_project_of_its_own_a_shard_fleet(
    installed: Path, tmp_path: Path, relation: str, outcome: str
) -> None:
    if not (installed / "pytest").exists():
        _run(str(installed / "pip"), "install", "--quiet", "-c", str(ROOT / "constraints.txt"),
             "pytest")  # fmt: skip
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_service.py").write_text(PROJECT_TEST.format(relation=relation))
    run = subprocess.run(
        [str(installed / "pytest"), "-p", "no:cacheprovider"],
        cwd=project, env=_clean_env(installed, tmp_path), capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert outcome in run.stdout, run.stdout + run.stderr
    assert run.returncode == (0 if relation == "==" else 1)
