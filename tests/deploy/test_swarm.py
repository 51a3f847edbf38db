"""The swarm stack for real: `docker swarm init` on the loopback address, `docker stack
deploy -c deploy/swarm/stack.yml`, 3 gateway replicas behind the stack's front door, 20
shards, Prometheus finding them by DNS; driven from this machine through the published
ports and, to reach one replica rather than any, from inside its container.

The stack is removed and the swarm left (if this test made it) whatever happens. Images
come from tests/deploy/conftest.py, as for the compose test.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.observe import HeldLoad
from tests.support import HOST, free_port, run_shardstack, wait_for_stack

pytestmark = pytest.mark.timeout(300, func_only=True)

ROOT = Path(__file__).parents[2]
STACK_FILE = ROOT / "deploy" / "swarm" / "stack.yml"
# Prometheus is published only with this file beside the stack; the tests read it.
PROMETHEUS_PORT_FILE = ROOT / "deploy" / "swarm" / "prometheus-port.yml"
UP_TIMEOUT_S = 300
REPLICAS = 3


@dataclass
class Swarm:
    name: str
    gateway: str
    prometheus: str
    token: str
    env: dict[str, str]

    def service(self, short: str) -> str:
        return f"{self.name}_{short}"

    def docker(self, *args: str, timeout_s: float = 120) -> str:
        done = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout_s
        )
        assert done.returncode == 0, f"docker {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def gateway_containers(self) -> list[str]:
        return self.docker(
            "ps", "--filter", f"label=com.docker.swarm.service.name={self.service('gateway')}",
            "--format", "{{.ID}}",
        ).split()  # fmt: skip

    def aggregate_from_inside(self, container: str) -> dict[str, object]:
        """An aggregate served by the replica in `container` itself."""
        fetch = (
            "import httpx; print(httpx.get('http://127.0.0.1:8000/api/aggregate', "
            "timeout=10, trust_env=False).text)"
        )
        body: dict[str, object] = json.loads(self.docker("exec", container, "python", "-c", fetch))
        return body

    def shardstack(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The `shardstack` CLI on this machine, as a user would run it."""
        return run_shardstack(*args, env=self.env)

    def targets(self, job: str) -> list[str]:
        """The instances of `job` Prometheus scrapes and finds up."""
        answer = httpx.get(f"{self.prometheus}/api/v1/targets", timeout=10, trust_env=False)
        return sorted(
            target["labels"]["instance"]
            for target in answer.json()["data"]["activeTargets"]
            if target["labels"]["job"] == job and target["health"] == "up"
        )


def _swarm_state() -> str:
    done = subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def swarm(
    stack_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Swarm]:
    logs = tmp_path_factory.mktemp("swarm")
    joined_here = _swarm_state() != "active"
    if joined_here:
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", HOST],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    suffix = uuid.uuid4().hex[:8]
    token = "swarm-test-token-" + uuid.uuid4().hex
    gateway_port, prometheus_port = free_port(), free_port()
    env = {
        **os.environ,
        **stack_images,
        "SHARDSTACK_TOKEN_SECRET": f"shardstack-test-{suffix}-token",
        "GATEWAY_PORT": str(gateway_port),
        "PROMETHEUS_PORT": str(prometheus_port),
        # Where `shardstack token --swarm` saves the token: this test's own directory.
        "XDG_STATE_HOME": str(logs / "state"),
    }
    env.pop("SHARDSTACK_ADMIN_TOKEN", None)
    stack = Swarm(
        f"sstest{suffix}",
        f"http://{HOST}:{gateway_port}",
        f"http://{HOST}:{prometheus_port}",
        token,
        env,
    )
    try:
        subprocess.run(
            ["docker", "secret", "create", env["SHARDSTACK_TOKEN_SECRET"], "-"],
            input=token, text=True, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        stack.docker(
            "stack", "deploy", "--resolve-image", "never",
            "-c", str(STACK_FILE), "-c", str(PROMETHEUS_PORT_FILE), stack.name,
        )  # fmt: skip
        wait_for_stack(
            lambda: _converged(stack), "every service of the stack running", UP_TIMEOUT_S
        )
        yield stack
    finally:
        _tear_down(stack, logs, joined_here)


def _converged(stack: Swarm) -> bool:
    listed = stack.docker(
        "service", "ls", "--filter", f"label=com.docker.stack.namespace={stack.name}",
        "--format", "{{.Replicas}}",
    ).split()  # fmt: skip
    # 20 shards, the gateway, the front door and Prometheus
    return len(listed) == 23 and all(_running(replicas) for replicas in listed)


def _running(replicas: str) -> bool:
    running, _, desired = replicas.partition("/")
    return running == desired.split()[0]


def _tear_down(stack: Swarm, logs: Path, joined_here: bool) -> None:
    for service in ("gateway", "lb", "prometheus"):
        done = subprocess.run(
            ["docker", "service", "logs", "--no-task-ids", stack.service(service)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        logs.joinpath(f"{service}.log").write_text(done.stdout + done.stderr)
    subprocess.run(["docker", "stack", "rm", stack.name], capture_output=True, timeout=120)
    # `stack rm` returns before its containers are gone; the volume and secret wait for them.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.stack.namespace={stack.name}"],
            capture_output=True, text=True, timeout=60,
        ).stdout.split()  # fmt: skip
        if not left:
            break
        time.sleep(1)
    for command in (
        ["docker", "volume", "rm", f"{stack.name}_prometheus-data"],
        ["docker", "secret", "rm", stack.env["SHARDSTACK_TOKEN_SECRET"]],
    ):
        subprocess.run(command, capture_output=True, timeout=60)
    if joined_here:
        subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True, timeout=120)


def _complete(stack: Swarm) -> bool:
    body = httpx.get(f"{stack.gateway}/api/aggregate", timeout=10, trust_env=False).json()
    return bool(body["status"] == "complete" and body["ok"] == 20)


def test_replicas_share_faults_and_prometheus_finds_each(swarm: Swarm) -> None:
    wait_for_stack(lambda: _complete(swarm), "a complete aggregate from 20 shards")
    wait_for_stack(lambda: len(swarm.targets("gateway")) == REPLICAS, "3 gateway replicas up", 60)
    wait_for_stack(lambda: len(swarm.targets("shards")) == 20, "20 shards up in Prometheus", 60)

    # Each replica its own series: one semaphore each (100 permits x 1 worker).
    def capacities() -> dict[str, str]:
        answer = httpx.get(
            f"{swarm.prometheus}/api/v1/query",
            params={"query": 'gateway_semaphore_capacity{job="gateway"}'},
            timeout=10,
            trust_env=False,
        )
        return {
            series["metric"]["instance"]: series["value"][1]
            for series in answer.json()["data"]["result"]
        }

    wait_for_stack(lambda: len(capacities()) == REPLICAS, "a semaphore series per replica", 60)
    assert sorted(capacities()) == swarm.targets("gateway")
    assert set(capacities().values()) == {"100"}

    # A fault injected through one replica, inside its container...
    first, *others = swarm.gateway_containers()
    assert len(others) == REPLICAS - 1
    inject = (
        "python -m shardstack fault inject 3 error status=503 --for 5m --id through-one "
        '--gateway http://127.0.0.1:8000 --token "$(cat "$SHARDSTACK_ADMIN_TOKEN_FILE")"'
    )
    swarm.docker("exec", first, "sh", "-c", inject)
    # ... is in the aggregates every other replica serves.
    for container in others:
        body = swarm.aggregate_from_inside(container)
        assert (body["status"], body["ok"], body["failed"]) == ("partial", 19, 1), body
        [shard_3] = [entry for entry in body["shards"] if entry["shard"] == 3]  # type: ignore[attr-defined]
        assert shard_3["status"] == "error"

    # The CLI on this machine: the token read through the engine, then used unasked.
    read = swarm.shardstack("token", "--swarm", swarm.name)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == swarm.token
    assert swarm.gateway in read.stderr
    listed = swarm.shardstack("fault", "list", "--gateway", swarm.gateway)
    assert listed.returncode == 0, listed.stderr
    assert "through-one" in listed.stdout
    cleared = swarm.shardstack("fault", "clear", "--gateway", swarm.gateway)
    assert cleared.returncode == 0, cleared.stderr
    for container in (first, *others):
        body = swarm.aggregate_from_inside(container)
        assert (body["status"], body["ok"]) == ("complete", 20), body


def test_a_rolling_update_of_the_gateway_cuts_no_request(swarm: Swarm) -> None:
    wait_for_stack(lambda: _complete(swarm), "a complete aggregate from 20 shards")
    before = set(swarm.gateway_containers())
    with HeldLoad(f"{swarm.gateway}/api/aggregate", threads=6, timeout_s=20, max_s=240) as load:
        wait_for_stack(lambda: len(load.records) >= 30, "the load under way", 60)
        # Replica by replica, each new one healthy before an old one stops (start-first).
        swarm.docker(
            "service", "update", "--force", "--detach=false", swarm.service("gateway"),
            timeout_s=240,
        )  # fmt: skip
        during = len(load.records)
        wait_for_stack(lambda: len(load.records) >= during + 30, "answers after the update", 60)
    assert not before & set(swarm.gateway_containers()), "every replica was replaced"
    # Every request answered by a gateway replica (its X-Request-Id): a 503 shed under load
    # or a 502 whose shards all timed out on a starved machine is an answer; a transport
    # error or the front door's own error page is a request the update cut.
    cut = load.outcomes - load.from_gateway
    assert not cut, f"{dict(cut)} of {sum(load.outcomes.values())}: {load.refusals}"
    assert load.outcomes["200"] >= 60
    print(f"rolling update under load: {dict(load.outcomes)}")


def test_a_scaled_gateway_is_scraped_within_30s(swarm: Swarm) -> None:
    wait_for_stack(lambda: len(swarm.targets("gateway")) == REPLICAS, "3 gateway replicas up", 60)
    try:
        scaled_at = time.monotonic()
        swarm.docker("service", "scale", "--detach=true", f"{swarm.service('gateway')}=5")
        # From the command: two replicas started, healthy, in DNS, found and scraped.
        wait_for_stack(lambda: len(swarm.targets("gateway")) == 5, "5 replicas in Prometheus", 30)
        print(f"5 replicas scraped {time.monotonic() - scaled_at:.1f}s after `scale`")
        assert len(swarm.gateway_containers()) == 5
        assert _complete(swarm)
    finally:
        swarm.docker(
            "service", "scale", "--detach=false", f"{swarm.service('gateway')}={REPLICAS}",
            timeout_s=180,
        )  # fmt: skip


def test_every_container_runs_read_only_without_capabilities(swarm: Swarm) -> None:
    containers = swarm.docker(
        "ps", "--filter", f"label=com.docker.stack.namespace={swarm.name}", "--format", "{{.ID}}"
    ).split()
    assert len(containers) >= 23
    for inspected in json.loads(swarm.docker("inspect", *containers)):
        host = inspected["HostConfig"]
        name = inspected["Name"]
        assert host["ReadonlyRootfs"] is True, name
        assert host["CapDrop"] == ["ALL"], name
