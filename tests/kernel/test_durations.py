"""Durations as people write them, and the short form they are shown in."""

from __future__ import annotations

import pytest

from shardstack_kernel.durations import format_duration, parse_duration
from shardstack_kernel.validation import InvalidInput


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("2m", 120), ("1h", 3600), ("1m30s", 90), ("1.5", 1.5),
     (" 10S ", 10), (0, 0), (2.5, 2.5)],
)  # fmt: skip
def test_written_durations_are_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text, "--for") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "", "10x", "5s5", "-1", "inf", "nan", True, "1 m"])
def test_anything_else_names_the_field(text: str | bool) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_duration(text, "--for")
    assert caught.value.errors[0].field == "--for"


@pytest.mark.parametrize("seconds", [0.25, 1, 30, 90, 150.5, 3600])
def test_the_short_form_reads_back(seconds: float) -> None:
    assert parse_duration(format_duration(seconds), "x") == pytest.approx(seconds)
    assert format_duration(90) == "1m30s"
