"""The suite's tiers (tests/conftest.py): every test collected is in exactly one, and the
in-process tier keeps its promise of starting no process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import TIERS


def test_every_collected_test_is_in_exactly_one_tier(request: pytest.FixtureRequest) -> None:
    for item in request.session.items:
        tiers = [name for name in TIERS if item.get_closest_marker(name) is not None]
        assert len(tiers) == 1, (item.nodeid, tiers)


def test_an_in_process_test_that_starts_a_process_fails_naming_its_tier() -> None:
    with pytest.raises(AssertionError, match="belongs to the shards tier"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
