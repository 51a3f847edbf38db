"""The CLI refuses bad input with one line and a non-zero exit, before starting anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import run_shardstack


def shardstack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_shardstack(*args, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["up", "--latency", "lognormal:80,5"],
            {},
            "--latency': p99_ms: must be greater than or equal to p50_ms",
        ),
        (["up", "--latency", "gauss:1"], {}, "unknown latency model 'gauss'"),
        (["up", "--shards", "0"], {}, "'--shards': 0 is not in the range"),
        (["up", "--port", "9003"], {}, "--port: 9003 is one of the shard ports 9000-9019"),
        (["up", "--shard-base-port", "65530"], {}, "20 shards from it would need port 65549"),
        (["up", "--shard-latency", "25=fixed:1"], {}, "--shard-latency: no shard 25; ids are 0-19"),
        (["up", "--shard-latency", "x=fixed:1"], {}, "is not ID=MODEL"),
        (
            ["up"],
            {"GATEWAY_SEMAPHORE_SIZE": "0"},
            "GATEWAY_SEMAPHORE_SIZE: Input should be greater than or equal to 1",
        ),
        (
            ["up"],
            {"GATEWAY_DEFAULT_TIMEOUT_MS": "20000"},
            "GATEWAY_MAX_TIMEOUT_MS: must be greater than or equal to default_timeout_ms",
        ),
        (
            ["up"],
            {"GATEWAY_POOL_KEEPALIVE_S": "-1"},
            "GATEWAY_POOL_KEEPALIVE_S: Input should be greater than 0",
        ),
        (
            ["up"],
            {"SHARD_RECORDS": "-4"},
            "SHARD_RECORDS: Input should be greater than or equal to 0",
        ),
        (["up", "--capacity", "workers=0"], {}, "workers: Input should be greater than or equal"),
        (["up", "--capacity", "workers=2,overflow=502"], {}, "overflow: Input should be '503'"),
        (["up"], {"SHARD_CAPACITY": "queue=3"}, "SHARD_CAPACITY: workers: Field required"),
        (["up", "--latency", "percentiles:p50=5,p90=2"], {}, "p90: must be more than p50 (5 ms)"),
        (
            ["up", "--latency", "empirical:/nonexistent/l.txt"],
            {},
            "path: '/nonexistent/l.txt' is outside the latency directory (SHARD_LATENCY_DIR)",
        ),
        (["up", "--latency", "empirical:none.txt"], {}, "path: no file 'none.txt'"),
        (["upp"], {}, "No such command 'upp'"),
        (
            ["up"],
            {"SHARDSTACK_ADMIN_TOKEN_FILE": "/nonexistent/token"},
            "SHARDSTACK_ADMIN_TOKEN_FILE: cannot read /nonexistent/token: No such file",
        ),
        (["token", "--compose", "--swarm"], {}, "--compose and --swarm name two stacks"),
        (["up", "--prometheus", "/nonexistent/prometheus"], {}, "does not exist"),
        (
            ["up", "--prometheus", "/bin/true", "--no-prometheus"],
            {},
            "--prometheus and --no-prometheus exclude each other",
        ),
        (
            ["up", "--prometheus", "/bin/true", "--prometheus-port", "9005"],
            {},
            "--prometheus-port: port 9005 would serve both shard-05 and prometheus",
        ),
        (
            ["up", "--prometheus", "/bin/true", "--prometheus-port", "8000"],
            {},
            "--prometheus-port: port 8000 would serve both gateway and prometheus",
        ),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = shardstack(*args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("shardstack: ")
    assert message in lines[0]


def test_a_prometheus_that_cannot_run_is_refused_before_anything_starts(tmp_path: Path) -> None:
    binary = tmp_path / "prometheus"
    binary.write_text("not a program\n")
    binary.chmod(0o644)
    result = shardstack("up", "--prometheus", str(binary))
    assert result.returncode == 2
    assert (
        result.stderr
        == f"shardstack: invalid input: --prometheus: {binary} is not an executable file\n"
    )


def test_help_and_version() -> None:
    assert "Run shards and the gateway" in shardstack("--help").stdout
    assert "--shard-latency" in shardstack("up", "--help").stdout
    version = shardstack("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("shardstack, version ")


def test_token_prints_the_one_the_cli_would_send(tmp_path: Path) -> None:
    env = {"SHARDSTACK_ADMIN_TOKEN": "exported-token-0123456789", "XDG_STATE_HOME": str(tmp_path)}
    result = shardstack("token", env=env)
    assert (result.returncode, result.stdout) == (0, "exported-token-0123456789\n")


def test_token_names_where_to_find_one_when_there_is_none(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    env.pop("SHARDSTACK_ADMIN_TOKEN", None)
    result = run_shardstack("token", "--gateway", "http://127.0.0.1:8999", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("shardstack: no admin token for http://127.0.0.1:8999")


def test_token_of_a_stack_that_is_not_running_is_one_line(tmp_path: Path) -> None:
    # Whatever this machine has (no docker, no engine, or no such project): one line.
    result = shardstack("token", "--compose", "no-such-project-here", env={"PATH": "/nonexistent"})
    assert result.returncode == 1
    assert result.stderr == "shardstack: the docker command is not installed\n"
