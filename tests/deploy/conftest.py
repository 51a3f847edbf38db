"""A real Docker engine and the stack's images, made once per session for the tests that
run containers.

The images are built here, under a budget of their own, rather than inside the first
test's timeout: from nothing (no image, no build cache) a build takes minutes, with
images cached seconds. `pytest --fresh-images` (`make test-docker-fresh`) removes them
first, so a change to deploy/ is checked as a new machine checks it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
LOCAL_IMAGES = {
    "PYTHON_IMAGE": "shardstack-python:bookworm",
    "PROMETHEUS_IMAGE": "shardstack-prometheus:bookworm",
    "HAPROXY_IMAGE": "shardstack-haproxy:bookworm",
}
# From nothing, about 2 minutes on a quiet 2-core machine (debootstrap of the Python
# base, Debian's prometheus package, pip inside the image build); room for slow mirrors.
IMAGES_TIMEOUT_S = 1500
ENGINE_START_TIMEOUT_S = 60
_BUILD_ENV = dict(LOCAL_IMAGES)
# The services built from this repository; the shards share the gateway's image.
_BUILT_SERVICES = ("gateway", "loadgen")


def _say(config: pytest.Config, line: str) -> None:
    """A progress line on the terminal, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"deploy: {line}")


def _engine_running() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A running Docker engine: the one there is, or a dockerd started (and stopped) here.
    Skips where none can be had, except in CI, which installs one."""
    reason, daemon = _start_engine(tmp_path_factory.mktemp("dockerd") / "dockerd.log")
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker engine: {reason}")
        pytest.skip(reason)
    yield
    if daemon is not None:
        daemon.terminate()
        daemon.wait(60)


def _start_engine(log: Path) -> tuple[str | None, subprocess.Popen[bytes] | None]:
    if shutil.which("docker") is None or shutil.which("docker-compose") is None:
        return (
            "docker and docker-compose are not installed (Debian: docker.io docker-compose)",
            None,
        )
    if _engine_running():
        return None, None
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        return "no Docker engine is running, and this user cannot start dockerd", None
    with log.open("ab") as out:
        daemon = subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + ENGINE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _engine_running():
            return None, daemon
        time.sleep(1)
    daemon.terminate()
    daemon.wait(60)
    return f"dockerd did not come up within {ENGINE_START_TIMEOUT_S}s (log: {log})", None


@pytest.fixture(scope="session")
def stack_images(docker_engine: None, request: pytest.FixtureRequest) -> dict[str, str]:
    """The base images (deploy/local-images.sh) and the images built from this repository,
    up to date; the environment variables that make Compose use them."""
    config = request.config
    started = time.monotonic()
    if config.getoption("fresh_images"):
        removed = _remove_project_images()
        _say(config, f"removed {len(removed)} images and the build cache: {' '.join(removed)}")
    _say(
        config,
        f"building the stack's images (from nothing about 2 min; {IMAGES_TIMEOUT_S}s at most)",
    )
    _run_within(started, [str(ROOT / "deploy" / "local-images.sh")], "deploy/local-images.sh")
    _run_within(started, ["docker-compose", "build", *_BUILT_SERVICES], "docker-compose build")
    _say(config, f"images ready in {time.monotonic() - started:.0f}s")
    return dict(LOCAL_IMAGES)


def _run(command: list[str], what: str, timeout_s: float | None = None) -> str:
    """`command`'s output, run where Compose finds the build's variables; fails with its
    own words if it fails."""
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **_BUILD_ENV},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == 0, f"{what} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def _run_within(started: float, command: list[str], what: str) -> None:
    left = IMAGES_TIMEOUT_S - (time.monotonic() - started)
    try:
        _run(command, what, timeout_s=max(left, 1))
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"{what}: the images were not built within {IMAGES_TIMEOUT_S}s: {expired}")


def _remove_project_images() -> list[str]:
    """Remove every image the compose file names and the bases, then what builds leave
    (dangling stages, the build cache): the engine then holds none of this project's
    layers. The build cache has no per-project label, so it is cleared whole."""
    resolved = yaml.safe_load(_run(["docker-compose", "config"], "docker-compose config"))
    named = {service["image"] for service in resolved["services"].values()}
    present = [
        image
        for image in sorted(named | set(LOCAL_IMAGES.values()))
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode
        == 0
    ]
    if present:
        _run(["docker", "image", "rm", "--force", *present], "docker image rm")
    _run(["docker", "image", "prune", "--force"], "docker image prune")
    _run(["docker", "builder", "prune", "--all", "--force"], "docker builder prune")
    return present
