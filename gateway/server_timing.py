"""The shard's own account of an answer, from its `Server-Timing` header: `total;dur=` is
the time from the request read to the answer written, `delay;dur=` the delay it injected
(its latency model plus latency faults), both in milliseconds.

A few lines of parsing rather than a dependency; anything unexpected (a shard of another
version, a proxy's header) reads as unknown, never as an error on the hot path.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class ShardTiming(NamedTuple):
    served_ms: float | None
    injected_ms: float | None


UNKNOWN = ShardTiming(None, None)


def shard_timing(header: str | None) -> ShardTiming:
    """`total`'s and `delay`'s `dur` in `header`; each None when absent or not a finite,
    non-negative number."""
    if not header:
        return UNKNOWN
    served = injected = None
    for entry in header.split(","):
        name, _, params = entry.strip().partition(";")
        if name == "total":
            served = _duration(params)
        elif name == "delay":
            injected = _duration(params)
    return ShardTiming(served, injected)


def _duration(params: str) -> float | None:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key == "dur":
            try:
                duration = float(value)
            except ValueError:
                return None
            return duration if math.isfinite(duration) and duration >= 0 else None
    return None
