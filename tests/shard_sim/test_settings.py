"""Shard settings: read from SHARD_* variables; a bad one stops the process with one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shard_sim.settings import ShardSettings
from shardstack_kernel.latency import LognormalLatency


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARD_ID", "7")
    monkeypatch.setenv("SHARD_PORT", "9107")
    monkeypatch.setenv("SHARD_LATENCY", '{"model": "lognormal", "p50_ms": 4, "p99_ms": 40}')
    settings = ShardSettings()
    assert (settings.id, settings.port) == (7, 9107)
    assert settings.latency == LognormalLatency(p50_ms=4, p99_ms=40)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SHARD_LATENCY", "lognormal:80,5", "SHARD_LATENCY: p99_ms: must be greater than or equal"),
        (
            "SHARD_LATENCY",
            "fixed:-5",
            "SHARD_LATENCY: ms: Input should be greater than or equal to 0",
        ),
        ("SHARD_LATENCY", "zipf:1", "SHARD_LATENCY: model: unknown latency model 'zipf'"),
        ("SHARD_PORT", "70000", "SHARD_PORT: Input should be less than or equal to 65535"),
        ("SHARD_PORT", "http", "SHARD_PORT: Input should be a valid integer"),
        (
            "SHARD_RECORD_BYTES",
            "-1",
            "SHARD_RECORD_BYTES: Input should be greater than or equal to 0",
        ),
    ],
)
def test_invalid_setting_exits_2_with_one_line_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shard_sim"],
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
