"""Admission's rules on their own: the adaptive CPU limit, the pause after a refusal at
the front door, and the settings that bound the queues in front of the app."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.cpu_limit import CpuLimit
from gateway.front_door import refusal_pause_s
from gateway.metrics import GatewayMetrics
from gateway.settings import somaxconn

TARGET_S = 0.01


def _limit(ceiling: int) -> CpuLimit:
    return CpuLimit(ceiling, TARGET_S, GatewayMetrics(range(2)))


def test_the_cpu_limit_grows_while_the_loop_keeps_up_and_shrinks_to_its_floor_on_lag() -> None:
    limit = _limit(64)
    assert limit.limit == 8
    for _ in range(100):
        limit.window(TARGET_S / 10)
    assert limit.limit == 64  # never past the ceiling
    limit.window(TARGET_S * 3)
    assert limit.limit == pytest.approx(64 * 0.67)
    for _ in range(50):
        limit.window(TARGET_S * 3)
    assert limit.limit == 8  # a lag with fewer in flight is not theirs to pay for
    low = _limit(4)
    assert low.limit == 4
    low.window(TARGET_S * 3)
    assert low.limit == 4  # a ceiling under the floor is the floor
    before = limit.limit
    limit.window(TARGET_S * 0.75)  # between half the target and the target: hold
    assert limit.limit == before


def test_a_refused_connection_waits_longer_with_each_refusal_in_a_row() -> None:
    pauses = [refusal_pause_s(n, 200) for n in range(1, 9)]
    assert pauses == [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.2, 0.2]
    assert refusal_pause_s(1_000, 200) == 0.2
    assert refusal_pause_s(3, 0) == 0


def _gunicorn_conf(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import gateway.gunicorn_conf"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GATEWAY_MAX_AGGREGATES_IN_FLIGHT": "0"}, "GATEWAY_MAX_AGGREGATES_IN_FLIGHT"),
        ({"GATEWAY_MAX_CONNECTIONS": "-1"}, "GATEWAY_MAX_CONNECTIONS"),
        ({"GATEWAY_HEADER_TIMEOUT_S": "0"}, "GATEWAY_HEADER_TIMEOUT_S"),
        ({"GATEWAY_LOOP_LAG_TARGET_MS": "-5"}, "GATEWAY_LOOP_LAG_TARGET_MS"),
        ({"GATEWAY_REFUSAL_PAUSE_MAX_MS": "soon"}, "GATEWAY_REFUSAL_PAUSE_MAX_MS"),
        ({"GATEWAY_BIND": "unix:/tmp/gw.sock"}, "GATEWAY_REUSE_PORT"),
    ],
)
def test_a_bad_front_door_setting_stops_the_gateway_with_one_line_naming_it(
    env: dict[str, str], named: str
) -> None:
    result = _gunicorn_conf(**env)
    assert result.returncode == 2
    assert result.stderr.startswith("gateway: invalid setting: ")
    assert named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_backlog_the_kernel_would_cut_is_refused() -> None:
    limit = somaxconn()
    if limit is None:
        pytest.skip("net.core.somaxconn cannot be read here")
    result = _gunicorn_conf(GATEWAY_BACKLOG=str(limit + 1))
    assert result.returncode == 2
    assert "GATEWAY_BACKLOG" in result.stderr
    assert "somaxconn" in result.stderr
    assert _gunicorn_conf(GATEWAY_BACKLOG=str(limit)).returncode == 0
