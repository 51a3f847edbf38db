"""The gateway's OpenAPI document against the gateway that serves it: schemathesis with
every check and every phase (stateful included) against a real `shardstack up` with
zones, admin token and all. Bounded in examples per operation and in time; its seed is
fixed so a run here is a run in CI (SHARDSTACK_OPENAPI_SEED draws others)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shardstack_kernel.topology import striped_zones
from tests.e2e.openapi_hooks import LATENCY_FILE_ENV, ZONES_ENV
from tests.e2e.stack import start_stack, wait_until_up
from tests.support import without_coverage

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
SHARDS = 8
ZONES = 4
EXAMPLES = 100


@pytest.mark.timeout(900)
def test_schemathesis_finds_nothing_the_document_does_not_say(tmp_path: Path) -> None:
    latencies = tmp_path / "latencies.txt"
    latencies.write_text("1\n2\n2\n5\n40\n")
    stack = start_stack(
        tmp_path,
        "--zones", str(ZONES),
        "--latency", "fixed:1",
        shards=SHARDS,
        # Deadlines short enough that aggregates under drawn faults end quickly.
        GATEWAY_DEFAULT_TIMEOUT_MS="500",
        GATEWAY_MAX_TIMEOUT_MS="1000",
        SHARD_LATENCY_DIR=str(tmp_path),
    )  # fmt: skip
    try:
        wait_until_up(stack)
        document = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=10).json()
        timeout = document["paths"]["/api/aggregate"]["get"]["parameters"][0]
        assert timeout["schema"]["maximum"] == 1000  # the document of this gateway
        schemathesis = Path(sys.executable).with_name("schemathesis")
        command = [
            str(schemathesis), "--config-file", str(CONFIG),
            "run", f"{stack.gateway_url}/openapi.json",
            "--checks", "all",
            "--header", f"Authorization: {stack.admin_headers()['authorization']}",
            "--max-examples", str(EXAMPLES),
            "--seed", os.environ.get("SHARDSTACK_OPENAPI_SEED", "20261206"),
            # One worker: Python 3.11's ast module counts its recursion depth per
            # interpreter, so hypothesis describing filters in two threads at once can
            # fail with "AST constructor recursion depth mismatch" (cpython gh-106905).
            "--workers", "1",
            "--request-timeout", "10",
        ]  # fmt: skip
        zones = ",".join(striped_zones(SHARDS, ZONES))
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=without_coverage(
                {**os.environ, ZONES_ENV: zones, LATENCY_FILE_ENV: latencies.name}
            ),
            capture_output=True,
            text=True,
            timeout=800,
        )
    finally:
        stack.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅  {phase}" in result.stdout, result.stdout[-3000:]
