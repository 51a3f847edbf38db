"""The suite's tiers and phases (tests/conftest.py): every test collected is in exactly
one tier, the in-process tier keeps its promise of starting no process, and the tests
that must run alone are real tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import conftest
from tests.conftest import ALONE, TIERS


def test_every_collected_test_is_in_exactly_one_tier(request: pytest.FixtureRequest) -> None:
    for item in request.session.items:
        tiers = [name for name in TIERS if item.get_closest_marker(name) is not None]
        assert len(tiers) == 1, (item.nodeid, tiers)


def test_an_in_process_test_that_starts_a_process_fails_naming_its_tier() -> None:
    with pytest.raises(AssertionError, match="belongs to the shards tier"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_each_test_that_runs_alone_is_named_by_a_file_and_function_that_exist() -> None:
    # A renamed test would otherwise drop out of ALONE silently and run beside others.
    for entry in ALONE:
        path, _, function = entry.partition("::")
        source = (Path(conftest.__file__).parent / path).read_text()
        assert not function or f"\ndef {function}(" in source, entry
