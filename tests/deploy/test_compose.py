"""`docker compose up` for real: the image built, 20 shards, the gateway under gunicorn and
Prometheus in containers, driven from this machine through the published ports.

Base images come from deploy/local-images.sh (Debian's packages), since no registry can
be reached here; the Dockerfile and docker-compose.yml are what a user runs. Grafana has
no Debian package, so its service is the one left out. Skipped, with the reason, only
where no Docker engine can be started.

The images and the stack's start have budgets of their own (tests/deploy/conftest.py,
UP_TIMEOUT_S); the per-test timeout holds for each test's own body.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shardstack.testing import Fleet, Received, RecentRequest
from shardstack_kernel.admin_token import TOKEN_ENV
from shardstack_kernel.topology import SHARD_COUNT as SHARDS
from tests.e2e.observe import HeldLoad, scrape, wait_for
from tests.support import HOST, free_port, free_port_block, run_shardstack, wait_for_stack

pytestmark = pytest.mark.timeout(func_only=True)

ROOT = Path(__file__).parents[2]
UP_TIMEOUT_S = 300


class Compose:
    def __init__(self, project: str, env: dict[str, str]) -> None:
        self.project = project
        self.env = env
        self.token = ""

    def run(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", "-p", self.project, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def services(self) -> list[str]:
        """Every service the file declares, those behind a profile too."""
        return self.run("config", "--services").stdout.split()

    def containers(self, template: str, *, exited: bool = False) -> list[str]:
        """A line per container of this project, from the engine (`docker ps --format`):
        `docker-compose ps` wraps its table's columns to the width it guesses."""
        listed = subprocess.run(
            ["docker", "ps", *(["-a"] if exited else []),
             "--filter", f"label=com.docker.compose.project={self.project}",
             "--format", template],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return listed.stdout.splitlines()

    def started(self) -> set[str]:
        """The services that have a container, running or exited (the token service)."""
        return set(self.containers('{{.Label "com.docker.compose.service"}}', exited=True))


@pytest.fixture(scope="module")
def compose(
    stack_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Compose, str, str]]:
    logs = tmp_path_factory.mktemp("compose")
    gateway_port, prometheus_port = free_port(), free_port()
    # `docker compose up` as it is typed: no token exported, so the stack makes one.
    env = {
        **{name: value for name, value in os.environ.items() if name != TOKEN_ENV},
        **stack_images,
        "GATEWAY_PORT": str(gateway_port),
        "PROMETHEUS_PORT": str(prometheus_port),
        # Where `shardstack token --compose` saves the token: this module's own directory.
        "XDG_STATE_HOME": str(logs / "state"),
    }
    stack = Compose(f"shardstack-test-{uuid.uuid4().hex[:8]}", env)
    try:
        # As the compose page's line for a machine without a registry: every service but
        # the profiles' (Grafana, from a registry only; loadgen, run on demand; the
        # shards-only fleet).
        up = stack.run("up", "-d", timeout_s=UP_TIMEOUT_S)
        assert up.returncode == 0, up.stdout + up.stderr
        assert stack.started() == set(stack.services()) - {"grafana", "loadgen", "shards"}
        stack.token = _read_token(stack, f"http://{HOST}:{gateway_port}")
        yield stack, f"http://{HOST}:{gateway_port}", f"http://{HOST}:{prometheus_port}"
    finally:
        logs.joinpath("compose.log").write_text(stack.run("logs", "--no-color").stdout)
        down = stack.run("down", "-v", "--remove-orphans")
        assert down.returncode == 0, down.stdout + down.stderr


def _shardstack(stack: Compose, *args: str) -> subprocess.CompletedProcess[str]:
    """The `shardstack` CLI on this machine, as a user would run it beside the stack."""
    return run_shardstack(*args, env=stack.env)


def _read_token(stack: Compose, gateway: str) -> str:
    """`shardstack token --compose PROJECT`: the token the stack made, read through the
    engine and saved for the published gateway."""
    read = _shardstack(stack, "token", "--compose", stack.project)
    assert read.returncode == 0, read.stderr
    assert f"saved for {gateway} ({stack.project})" in read.stderr
    return read.stdout.strip()


def _inject_fault(stack: Compose, gateway: str, *spec: str) -> None:
    """`shardstack fault inject SPEC --for 5m` through the stack's gateway, with the token
    `shardstack token --compose` saved (no --token, nothing exported)."""
    injected = _shardstack(stack, "fault", "inject", *spec, "--for", "5m", "--gateway", gateway)
    assert injected.returncode == 0, injected.stderr


def test_the_compose_stack_answers_takes_faults_and_is_scraped(
    compose: tuple[Compose, str, str],
) -> None:
    stack, gateway, prometheus = compose
    health = stack.run("ps")
    assert "unhealthy" not in health.stdout, health.stdout

    def complete() -> bool:
        body = httpx.get(f"{gateway}/api/aggregate", timeout=10, trust_env=False).json()
        return bool(body["status"] == "complete" and body["ok"] == 20)

    wait_for_stack(complete, "a complete aggregate from 20 shards")

    _inject_fault(stack, gateway, "3", "error", "status=503")
    body = httpx.get(f"{gateway}/api/aggregate", timeout=10, trust_env=False).json()
    assert (body["status"], body["ok"], body["failed"]) == ("partial", 19, 1)
    [shard_3] = [entry for entry in body["shards"] if entry["shard"] == 3]
    assert shard_3["status"] == "error"

    # The panel, from the image's installed package, sees the fault through the containers.
    assert httpx.get(f"{gateway}/ui", timeout=10, trust_env=False).status_code == 200
    assert httpx.get(f"{gateway}/ui/assets/panel.js", timeout=10, trust_env=False).is_success
    assert httpx.get(f"{gateway}/docs", timeout=10, trust_env=False).status_code == 200
    token = {"authorization": f"Bearer {stack.token}"}
    state = httpx.get(f"{gateway}/ui/state", headers=token, timeout=10, trust_env=False).json()
    tiles = {shard["id"]: shard for shard in state["shards"]}
    assert len(tiles) == 20
    assert all(tile["up"] for tile in tiles.values())
    assert [fault["kind"] for fault in tiles[3]["faults"]] == ["error"]

    def query(expr: str) -> list[dict[str, object]]:
        response = httpx.get(
            f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10, trust_env=False
        )
        result: list[dict[str, object]] = response.json()["data"]["result"]
        return result

    wait_for_stack(lambda: len(query("up == 1")) == 22, "22 targets up in Prometheus", 120)
    wait_for_stack(
        lambda: len(query("gateway_semaphore_capacity")) == 1,
        "the gateway's semaphore series in Prometheus",
        60,
    )
    [capacity] = query("gateway_semaphore_capacity")
    assert capacity["value"] == [capacity["value"][0], "200"]  # type: ignore[index]


def test_the_stack_makes_a_token_shows_it_once_as_made_and_an_exported_one_wins(
    compose: tuple[Compose, str, str],
) -> None:
    stack, _, _ = compose
    assert len(stack.token) >= 16
    # Shown once, by the token service as it makes it; the gateway and the shards never.
    token_log = stack.run("logs", "--no-color", "token").stdout
    assert token_log.count(stack.token) == 1
    assert "made for this stack" in token_log
    everywhere = stack.run("logs", "--no-color").stdout
    assert everywhere.count(stack.token) == 1

    # The token service on a volume of its own: made once, kept, replaced by an export.
    side = Compose(f"{stack.project}-token", {**stack.env})

    def keep(exported: str | None) -> tuple[str, str]:
        env = {} if exported is None else {TOKEN_ENV: exported}
        side.env = {**stack.env, **env}
        kept = side.run("run", "--rm", "token", timeout_s=120)
        assert kept.returncode == 0, kept.stdout + kept.stderr
        read = side.run("run", "--rm", "token", "cat", "/run/shardstack/admin-token")
        assert read.returncode == 0, read.stdout + read.stderr
        return kept.stdout, read.stdout.strip()

    try:
        said, made = keep(None)
        assert "made for this stack" in said
        assert len(made) >= 16
        assert made in said
        assert made != stack.token
        said, kept = keep(None)
        assert kept == made
        assert made not in said  # a later start keeps it and does not show it again
        exported = "exported-token-" + uuid.uuid4().hex
        said, now = keep(exported)
        assert TOKEN_ENV in said
        assert now == exported
    finally:
        side.run("down", "-v")


def test_every_container_runs_confined(compose: tuple[Compose, str, str]) -> None:
    stack, _, _ = compose
    containers = stack.run("ps", "-q").stdout.split()
    assert len(containers) >= 22  # 20 shards, the gateway, Prometheus
    inspected = subprocess.run(
        ["docker", "inspect", *containers], capture_output=True, text=True, timeout=60
    )
    assert inspected.returncode == 0, inspected.stderr
    for container in json.loads(inspected.stdout):
        host, name = container["HostConfig"], container["Name"]
        assert host["ReadonlyRootfs"] is True, name
        assert host["CapDrop"] == ["ALL"], name
        assert host["SecurityOpt"] == ["no-new-privileges:true"], name
        assert host["PidsLimit"] in (256, 1024), name


def test_published_ports_are_loopback_only(compose: tuple[Compose, str, str]) -> None:
    stack, _, _ = compose
    ports = " ".join(stack.containers("{{.Ports}}"))
    published = [part for part in ports.replace(",", " ").split() if "->" in part]
    assert published
    assert all(part.startswith("127.0.0.1:") for part in published), published


def test_the_loadgen_profile_loads_the_gateway(compose: tuple[Compose, str, str]) -> None:
    stack, gateway, _ = compose

    def answered() -> float:
        text = httpx.get(f"{gateway}/metrics", timeout=10, trust_env=False).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("gateway_aggregate_requests_total{")
        )

    before = answered()
    stack.env |= {"LOADGEN_DURATION": "5s", "LOADGEN_CONNECTIONS": "4"}
    run = stack.run("--profile", "loadgen", "run", "--rm", "loadgen", timeout_s=300)
    assert run.returncode == 0, run.stdout + run.stderr
    [summary] = [line for line in run.stdout.splitlines() if "requests in" in line]
    sent = int(summary.split()[0])
    assert sent > 0
    assert "Socket errors" not in run.stdout, run.stdout
    assert answered() - before >= sent


# The stop under load, then the stack started again and ready: more than the usual budget.
@pytest.mark.timeout(120 + UP_TIMEOUT_S, func_only=True)
def test_stopping_the_stack_under_load_cuts_no_request(compose: tuple[Compose, str, str]) -> None:
    stack, gateway, _ = compose
    try:
        _stop_under_load(stack, gateway)
    finally:
        # Started again, so the module's other tests may run after this one.
        restarted = stack.run("start", timeout_s=UP_TIMEOUT_S)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr

        def ready() -> bool:
            answer = httpx.get(f"{gateway}/readyz", timeout=10, trust_env=False)
            return answer.status_code == 200

        wait_for_stack(ready, "the restarted gateway ready with every shard")


def _stop_under_load(stack: Compose, gateway: str) -> None:
    # Long enough to hold aggregates in flight at the stop, with room under the shard call
    # timeout (1 s) for a busy machine: 20 shard containers share its cores.
    _inject_fault(stack, gateway, "all", "latency", "latency=fixed:500")
    url = f"{gateway}/api/aggregate?timeout_ms=5000"
    threads = 8
    with HeldLoad(url, threads=threads, timeout_s=20, max_s=120) as load:
        # Warm first: every client answered once, so the gateway's pools hold their
        # connections to the shards. The first calls also pay for the connect and the
        # engine's DNS, which on a busy machine can exceed the 500 ms of headroom; what is
        # measured below is the stop, not a cold pool.
        wait_for_stack(lambda: len(load.records) >= 2 * threads, "the load warmed up")
        warm_at = time.monotonic()
        wait_for(
            gateway,
            lambda s: s.get("gateway_aggregates_in_flight") >= 6,
            timeout_s=60,
            what="gateway_aggregates_in_flight",
        )
        load.stop_sending()
        # The stop begins here; nothing new is sent, so what the scrape finds in flight
        # was in flight then (an answer during the scrape counts as after the stop).
        stopped_at = time.monotonic()
        in_flight = scrape(gateway).get("gateway_aggregates_in_flight")
        # Compose stops dependents first: Prometheus, then the gateway (SIGTERM: it stops
        # accepting and finishes what it holds), then the shards it was calling.
        stop = stack.run("stop", timeout_s=120)
        assert stop.returncode == 0, stop.stdout + stop.stderr
    unanswered = [outcome for _, _, outcome in load.records if not outcome.isdigit()]
    assert unanswered == [], f"requests with no answer: {unanswered}"
    cut = [
        (outcome, round(answered - stopped_at, 2))
        for sent, answered, outcome in load.records
        if sent >= warm_at and outcome != "200"
    ]
    assert cut == [], f"(outcome, seconds after the stop): {cut}; {load.refusals}"
    answered_after = sum(answered > stopped_at for _, answered, _ in load.records)
    assert answered_after >= in_flight - 1  # the one scrape may have raced an answer
    [container] = stack.run("ps", "-q", "gateway").stdout.split()
    inspect = ["docker", "inspect", "-f", "{{.State.ExitCode}}", container]
    exit_code = subprocess.run(inspect, capture_output=True, text=True, timeout=60).stdout
    assert exit_code.strip() == "0"  # gunicorn stopped by SIGTERM, not killed at the grace
    print(f"{answered_after} requests in flight at `docker-compose stop`, all answered 200")


def test_the_shards_only_profile_runs_the_shards_alone_for_a_service_of_ones_own(
    stack_images: dict[str, str], tmp_path: Path
) -> None:
    """`docker compose --profile shards-only up shards`: the token and the shards, nothing
    else; their ports published, their token read through the engine, `Fleet` over them."""
    data, admin = free_port_block(SHARDS), free_port_block(SHARDS)
    env = {
        **{name: value for name, value in os.environ.items() if name != TOKEN_ENV},
        **stack_images,
        "SHARDS_DATA_PORTS": f"{data}-{data + SHARDS - 1}",
        "SHARDS_ADMIN_PORTS": f"{admin}-{admin + SHARDS - 1}",
        "SHARD_LATENCY": "fixed:3",
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    side = Compose(f"shardstack-shards-{uuid.uuid4().hex[:8]}", env)
    try:
        up = side.run("--profile", "shards-only", "up", "-d", "shards", timeout_s=UP_TIMEOUT_S)
        assert up.returncode == 0, up.stdout + up.stderr
        assert side.started() == {"token", "shards"}
        last = f"http://{HOST}:{data + SHARDS - 1}/healthz"
        wait_for_stack(lambda: httpx.get(last, timeout=5).status_code == 200, "the shards")
        read = _shardstack(side, "token", "--compose", side.project)
        assert read.returncode == 0, read.stderr
        assert f"without a gateway, from http://{HOST}:{data}" in read.stderr
        fleet = Fleet.attach(
            [f"http://{HOST}:{data + n}" for n in range(SHARDS)],
            read.stdout.strip(),
            admin_urls=[f"http://{HOST}:{admin + n}" for n in range(SHARDS)],
        )
        fault = fleet.inject("6", "error", status=503)
        assert fault.shards == (6,)
        assert httpx.get(f"http://{HOST}:{data + 6}/data", timeout=10).status_code == 503
        answer = httpx.get(f"http://{HOST}:{data + 7}/data", timeout=10).json()
        assert answer["delay_ms"] == 3
        assert fleet.received("6-7") == {
            shard: Received(1, (RecentRequest(None, 0),)) for shard in (6, 7)
        }
        zones = [httpx.get(f"http://{HOST}:{admin + n}/healthz").json() for n in (2, 6)]
        assert [zone["shard"] for zone in zones] == [2, 6]
        assert not (tmp_path / "state" / "shardstack").exists()  # nothing saved for a CLI
    finally:
        down = side.run("down", "-v", "--remove-orphans")
        assert down.returncode == 0, down.stdout + down.stderr
