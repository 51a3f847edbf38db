"""The admin token of a stack running under a Docker engine, read through the engine's
own CLI (`docker`): from a gateway container of a compose project or swarm stack (or the
shards container of compose's shards-only profile), its SHARDSTACK_ADMIN_TOKEN, else the
file its SHARDSTACK_ADMIN_TOKEN_FILE names (the compose stack's generated token, the
swarm secret). The `docker` command rather than an engine
library: it is there wherever the stack is, with the user's context and permissions."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

from shardstack.errors import OperatorError
from shardstack_kernel import topology
from shardstack_kernel.admin_token import TOKEN_ENV, TOKEN_FILE_ENV

Orchestrator = Literal["compose", "swarm"]
ROLE_LABEL = "io.shardstack.role"
_PROJECT_LABEL: dict[Orchestrator, str] = {
    "compose": "com.docker.compose.project",
    "swarm": "com.docker.stack.namespace",
}
_WHAT: dict[Orchestrator, str] = {"compose": "compose project", "swarm": "swarm stack"}
# The swarm stack's front door (deploy/swarm/stack.yml): its published port is the stack's.
SWARM_FRONT_SERVICE = "lb"


class StackError(OperatorError):
    """No such stack under the engine, or the engine would not answer."""


@dataclass(frozen=True)
class StackToken:
    token: str
    # The published gateway, or for a shards-only stack its first shard's data port.
    url: str
    project: str
    shards_only: bool = False


def read_stack_token(orchestrator: Orchestrator, project: str | None) -> StackToken:
    """The token and published gateway URL of the running stack `project` (or the only one);
    under compose, a shards-only stack's token and first shard URL when no gateway runs."""
    containers = _containers(orchestrator, project, "gateway")
    shards_only = not containers and orchestrator == "compose"
    if shards_only:
        containers = _containers(orchestrator, project, "shards")
    what = _WHAT[orchestrator]
    if not containers:
        named = "" if project is None else f" {project!r}"
        raise StackError(f"no running shardstack gateway of a {what}{named} under this engine")
    if len(containers) > 1:
        raise StackError(
            f"several {what}s run a gateway ({', '.join(sorted(containers))}); name one"
        )
    [(name, container)] = containers.items()
    # The gateway's own order: an exported token wins over the file.
    environment = dict(
        line.partition("=")[::2] for line in _docker("exec", container, "env").splitlines()
    )
    token = environment.get(TOKEN_ENV, "").strip()
    if not token and environment.get(TOKEN_FILE_ENV):
        token = _docker("exec", container, "cat", environment[TOKEN_FILE_ENV]).strip()
    if not token:
        raise StackError(
            f"the gateway of {name} has neither {TOKEN_ENV} nor {TOKEN_FILE_ENV}: "
            "it made its own token, which its log shows"
        )
    port = topology.SHARD_BASE_PORT if shards_only else topology.GATEWAY_PORT
    published = _published(orchestrator, name, container, port)
    return StackToken(token, f"http://{published}", name, shards_only)


def _containers(orchestrator: Orchestrator, project: str | None, role: str) -> dict[str, str]:
    """Running containers of `role`, by project."""
    label = _PROJECT_LABEL[orchestrator]
    found = _docker(
        "ps",
        "--filter", f"label={ROLE_LABEL}={role}",
        "--filter", f"label={label}" + ("" if project is None else f"={project}"),
        "--format", f'{{{{.ID}}}} {{{{.Label "{label}"}}}}',
    ).splitlines()  # fmt: skip
    return {
        name: container
        for container, _, name in (line.partition(" ") for line in found)
        if container and name
    }


def _published(orchestrator: Orchestrator, project: str, container: str, port: int) -> str:
    if orchestrator == "compose":
        address = _docker("port", container, f"{port}/tcp").split()[0]
        return address.replace("0.0.0.0:", "127.0.0.1:")
    ports = _docker(
        "service", "inspect", f"{project}_{SWARM_FRONT_SERVICE}",
        "--format", "{{range .Endpoint.Ports}}{{.PublishedPort}} {{end}}",
    ).split()  # fmt: skip
    if not ports:
        raise StackError(f"the swarm stack {project} publishes no gateway port")
    return f"127.0.0.1:{ports[0]}"


def _docker(*args: str) -> str:
    if shutil.which("docker") is None:
        raise StackError("the docker command is not installed")
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise StackError(f"docker {args[0]} did not answer within 30s") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise StackError(f"docker {args[0]}: {reason}")
    return done.stdout
