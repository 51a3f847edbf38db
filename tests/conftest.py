"""Fixtures for every test: a new machine's environment, real shard processes on free
loopback ports, and the in-process gateway built over them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.settings import ENV_PREFIX as GATEWAY_ENV_PREFIX
from gateway.settings import GatewaySettings
from shard_sim.settings import ENV_PREFIX as SHARD_ENV_PREFIX
from shardstack.bench.readiness import wait_ready
from tests.support import (
    ADMIN_TOKEN,
    HOST,
    GatewayFactory,
    ShardProcess,
    StartShard,
    free_port_block,
    stop_process,
)

# The suite's tiers, cheapest first; `-m TIER` picks one (`make check` runs the first). A
# test's tier is set here alone: the highest of what its fixtures start and of its folder.
TIERS = {
    "inprocess": "no process besides the test's own: logic, and apps served in this process",
    "shards": "real processes beside the test (shard processes, the CLI, a tool), the "
    "gateway if any in this process",
    "stack": "a whole `shardstack up`: shards, gunicorn's workers, Prometheus",
    "docker": "the image built and the compose and swarm stacks under a real Docker engine",
    "browser": "the panel in Debian's chromium, driven by Playwright, over a whole stack",
}
_TIER_BY_FIXTURE = {
    "start_shard": "shards",
    "shard_fleet": "shards",
    "start": "stack",
    "docker_engine": "docker",
    "browser": "browser",
}
# Modules that start processes without a fixture to say so; folders by their path.
_TIER_BY_PATH = {
    "e2e": "stack",
    "cli": "shards",
    "testing": "shards",
    "launcher/test_supervisor.py": "shards",
    "deploy/test_files.py": "shards",
    "deploy/test_prometheus.py": "shards",
    "deploy/test_swarm_files.py": "shards",
    "kernel/test_admin_token.py": "shards",
    "gateway/test_admission.py": "shards",
    "gateway/test_throttle.py": "shards",
    "shard_sim/test_data_port.py": "shards",
    "shard_sim/test_settings.py": "shards",
    "test_layout.py": "shards",
    "test_phases.py": "shards",
    "test_manual.py": "shards",
    "bench/test_readiness.py": "shards",
}
# Tests that load the machine on purpose (saturate its CPU, hold a thousand connections)
# or whose assertion is a ratio of figures measured on it: run beside other tests they
# would make those lie, or lie themselves. `make unit` runs them after the shared
# phase, one at a time; on a parallel worker (`-n`) one fails at once, saying so.
ALONE = (
    "e2e/test_cpu_overload.py",
    "e2e/test_capacity.py",
    "e2e/test_bench.py::test_compare_runs_each_variant_on_the_same_shards_and_gives_ratios",
    "e2e/test_bench.py::test_overload_offers_each_variant_multiples_of_its_own_peak",
    "e2e/test_bench.py::test_tail_hedging_lowers_the_p99_with_few_extra_calls",
)
# Whole tiers that need both cores for what they promise: the Docker tests build images
# and run stacks whose containers load both cores (beside other tests, a swarm rolling
# update cut requests at their deadlines), and the panel's 3-second promises fell behind
# a neighbour's load. They run alone too, one at a time.
ALONE_TIERS = ("docker", "browser")
PHASES = {
    "shared": "every test not marked alone (on parallel workers with -n)",
    "alone": "the tests marked alone, one at a time",
}
_HERE = Path(__file__).parent


def _module(item: pytest.Item) -> str:
    """A collected test's module, as ALONE and _TIER_BY_PATH name it (`e2e/test_up.py`)."""
    return item.path.relative_to(_HERE).as_posix()


def tier(item: pytest.Item) -> str:
    """The tier of a collected test."""
    found = ["inprocess"]
    relative = _module(item)
    found += [tier for path, tier in _TIER_BY_PATH.items() if relative.startswith(path)]
    fixtures = getattr(item, "fixturenames", ())
    found += [tier for fixture, tier in _TIER_BY_FIXTURE.items() if fixture in fixtures]
    return max(found, key=list(TIERS).index)


def alone(item: pytest.Item) -> bool:
    """Whether a collected test must have the machine to itself (ALONE, ALONE_TIERS)."""
    if tier(item) in ALONE_TIERS:
        return True
    module = _module(item)
    test = f"{module}::{item.name.split('[')[0]}"
    return any(entry in (test, module) for entry in ALONE)


def pytest_configure(config: pytest.Config) -> None:
    for name, meaning in TIERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")
    config.addinivalue_line("markers", "alone: needs the machine to itself (tests/conftest.py)")
    durations = config.getoption("durations_file")
    if durations and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_DurationsFile(Path(durations)))


class _DurationsFile:
    """Each test's whole time, setup to teardown, appended to a file at the session's end
    (in the process that reports, whichever worker ran the test)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        test = report.nodeid.split("@")[0]  # without the xdist group
        self.seconds[test] = self.seconds.get(test, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        with self.path.open("a") as out:
            out.writelines(f"{seconds:.2f}\t{test}\n" for test, seconds in self.seconds.items())


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(tier(item))
        if alone(item):
            item.add_marker("alone")
        elif item.get_closest_marker("inprocess") is None:
            # A module that starts processes runs on one parallel worker, so what it
            # starts once (a module's stack) is started once. (The Docker tests, whose
            # images the session builds once, run alone: ALONE_TIERS.)
            item.add_marker(pytest.mark.xdist_group(_module(item)))
    phase = config.getoption("phase")
    if phase is not None:
        keep, drop = [], []
        for item in items:
            shared = item.get_closest_marker("alone") is None
            (keep if shared == (phase == "shared") else drop).append(item)
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _a_test_that_must_run_alone_does(request: pytest.FixtureRequest) -> None:
    """ALONE's promise, held: on a parallel worker (pytest-xdist) such a test fails at once."""
    if request.node.get_closest_marker("alone") and hasattr(request.config, "workerinput"):
        pytest.fail(
            f"{request.node.nodeid} must run alone, not on parallel workers (-n): "
            "`make unit` runs it after the shared phase (tests/conftest.py, ALONE)",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _an_in_process_test_starts_no_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """The in-process tier's promise, held: a process started there fails the test,
    naming the tier it belongs to."""
    if request.node.get_closest_marker("inprocess") is None:
        yield
        return

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError(
            f"{request.node.nodeid} starts a process: it belongs to the shards tier or above "
            "(tests/conftest.py, _TIER_BY_PATH or _TIER_BY_FIXTURE)"
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", refused)
        yield


# What the product reads from the environment: the services' settings, the CLI's token and
# gateway, the metrics directory. A developer's shell may export any of them.
_PRODUCT_ENV_PREFIXES = (GATEWAY_ENV_PREFIX, SHARD_ENV_PREFIX, "SHARDSTACK_")
_PRODUCT_ENV = ("PROMETHEUS_MULTIPROC_DIR",)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fresh-images",
        action="store_true",
        help="remove this project's Docker images and the engine's build cache first, "
        "so the Docker tests build everything as a new machine does",
    )
    parser.addoption(
        "--phase",
        choices=list(PHASES),
        help="; ".join(f"{name}: {meaning}" for name, meaning in PHASES.items())
        + " (make unit runs both, tests/phases.py)",
    )
    parser.addoption(
        "--durations-file",
        metavar="PATH",
        help="append each test's whole time (setup, call and teardown) to PATH, a "
        "line per test (tests/phases.py prints the slowest)",
    )
    parser.addoption(
        "--panel-screenshot",
        metavar="PATH",
        help="where the browser panel's test saves its picture under load (make screenshot)",
    )


@pytest.fixture(scope="session", autouse=True)
def _environment_of_a_new_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite sees what CI sees: none of the product's variables from the shell that
    started it, and an empty state directory instead of the tokens `shardstack up` left
    under ~/.local/state."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(_PRODUCT_ENV_PREFIXES) or name in _PRODUCT_ENV:
                patch.delenv(name)
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        yield


@pytest.fixture(scope="session")
def start_shard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartShard]:
    """Start a real `python -m shard_sim` process; every one is stopped at session end."""
    started: list[ShardProcess] = []
    log_dir = tmp_path_factory.mktemp("shard-logs")

    def start(
        shard_id: int = 0, latency: str = "fixed:0", pack: int = 1, **env: str
    ) -> ShardProcess:
        """Shards `shard_id`.. (`pack` of them): data ports from `port`, admin ports next."""
        port = free_port_block(2 * pack)
        child_env: Mapping[str, str] = {
            **os.environ,
            "SHARDSTACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "SHARD_ID": str(shard_id),
            "SHARD_PORT": str(port),
            "SHARD_ADMIN_PORT": str(port + pack),
            "SHARD_PACK": str(pack),
            "SHARD_LATENCY": latency,
            **{f"SHARD_{key.upper()}": value for key, value in env.items()},
        }
        with Path(log_dir, f"shard-{shard_id}-{port}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "shard_sim"],
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        shard = ShardProcess(shard_id, port, port + pack, process)
        started.append(shard)
        for index in range(pack):
            wait_ready(f"http://{HOST}:{port + index}/healthz", process)
        return shard

    yield start
    for shard in started:
        stop_process(shard.process)


@pytest.fixture(scope="session")
def make_gateway() -> GatewayFactory:
    """The gateway app in this process over the given shard URLs, as a `TestClient` (enter
    it to run the lifespan). Its admin token is the shards', and it finds a shard's admin
    port where `start_shard` puts it (data port + 1); other settings are keywords."""

    def make(shard_urls: list[str], **settings: Any) -> TestClient:
        return TestClient(
            create_app(
                GatewaySettings(
                    shard_urls=tuple(shard_urls),
                    **{"shard_admin_port_offset": 1, "admin_token": ADMIN_TOKEN, **settings},
                )
            )
        )

    return make
