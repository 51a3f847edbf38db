"""`shardstack up --shards-only` end to end: the shards without the gateway, their URLs
printed and in the fleet file, controlled through it, and gone at Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shardstack.launcher.fleet_file import FleetDescription
from shardstack.testing import Fleet
from shardstack.testing.ports import is_free
from shardstack_kernel.topology import ADMIN_PORT_OFFSET
from tests.support import HOST, free_port_block, run_shardstack, wait_until

SHARDS = 3


def test_the_shards_run_alone_and_a_test_attaches_to_them_by_the_fleet_file(
    tmp_path: Path,
) -> None:
    base = free_port_block(SHARDS, also_at=ADMIN_PORT_OFFSET)
    fleet_file, stderr_path = tmp_path / "fleet.json", tmp_path / "up.err"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "shardstack", "up", "--shards-only", "--no-prometheus",
             "--shards", str(SHARDS), "--shard-base-port", str(base), "--zones", "3",
             "--latency", "fixed:2", "--seed", "5", "--fleet-file", str(fleet_file),
             "--log-dir", str(tmp_path / "logs")],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        wait_until(lambda: "Press Ctrl-C" in stderr_path.read_text(), 60, "shardstack up")
        said = stderr_path.read_text()
        urls = [f"http://{HOST}:{base + n}" for n in range(SHARDS)]
        assert "shardstack is up" in said
        assert ": 3 shards\n" in said
        assert f"  urls     {','.join(urls)}\n" in said
        assert f"  fleet    {fleet_file}" in said
        assert "gateway" not in said.split("Press Ctrl-C")[0].lower()
        assert fleet_file.stat().st_mode & 0o777 == 0o600

        described = FleetDescription.read(fleet_file)
        assert [shard.zone for shard in described.shards] == ["z0", "z1", "z2"]
        fleet = Fleet.attach_file(fleet_file)
        assert fleet.urls == urls
        fleet.inject("zone:z1", "error", status=503)
        assert httpx.get(f"{urls[1]}/data").status_code == 503
        assert httpx.get(f"{urls[0]}/data").json()["delay_ms"] == 2
        assert fleet.received()[1].calls == 1
        # No gateway: no token saved for the CLI, nothing listens but the shards.
        assert not (tmp_path / "state" / "shardstack").exists()
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    assert code == 0, stderr_path.read_text()
    assert not fleet_file.exists()
    deadline = time.monotonic() + 10
    ports = [base + n + offset for n in range(SHARDS) for offset in (0, ADMIN_PORT_OFFSET)]
    while not all(is_free(HOST, port) for port in ports):
        assert time.monotonic() < deadline, "the shards' ports stay taken"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--workers", "3"], "--workers sets the gateway, which --shards-only does not run"),
        (["--port", "8100"], "--port sets the gateway"),
        (["--allow-request-faults"], "--allow-request-faults sets the gateway"),
        (["--fleet-file", "/no/such/dir/f.json"], "--fleet-file: /no/such/dir is not a directory"),
    ],
)
def test_what_only_the_gateway_takes_is_refused_before_anything_starts(
    args: list[str], said: str
) -> None:
    run = run_shardstack("up", "--shards-only", "--no-prometheus", *args)
    assert run.returncode == 2
    assert said in run.stderr
    assert "starting" not in run.stderr
