"""Durations as people write them: `500ms`, `30s`, `2m`, `1h`, `1m30s`, or plain seconds."""

from __future__ import annotations

import re

from shardstack_kernel.validation import InvalidInput

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(value: str | float | int, field: str) -> float:
    """Seconds; `InvalidInput` naming `field` if `value` is not a non-negative duration."""
    if isinstance(value, bool):
        raise InvalidInput.field(field, f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not text or "".join(number + unit for number, unit in parts) != text:
                raise InvalidInput.field(
                    field, f"{value!r} is not a duration; use e.g. 500ms, 30s, 2m, 1m30s"
                ) from None
            seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not seconds >= 0 or seconds == float("inf"):
        raise InvalidInput.field(field, f"{value!r} must be a finite duration of 0 or more")
    return seconds


def format_duration(seconds: float) -> str:
    """The short form `parse_duration` reads back: `250ms`, `30s`, `2m30s`."""
    if seconds < 1:
        return f"{round(seconds * 1000):g}ms"
    minutes, rest = divmod(round(seconds, 1), 60)
    rest = round(rest, 1)
    if minutes < 1:
        return f"{rest:g}s"
    return f"{minutes:g}m{rest:g}s" if rest else f"{minutes:g}m"
