"""The shard's own account of an answer, from its `Server-Timing` header: `total;dur=` is
the time from the request read to the answer written, in milliseconds.

Eight lines of parsing rather than a dependency; anything unexpected (a shard of another
version, a proxy's header) reads as unknown, never as an error on the hot path.
"""

from __future__ import annotations

import math


def served_ms(header: str | None) -> float | None:
    """`total`'s `dur` in `header`, or None when it is absent or not a finite number."""
    if not header:
        return None
    for entry in header.split(","):
        name, _, params = entry.strip().partition(";")
        if name != "total":
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                try:
                    duration = float(value)
                except ValueError:
                    return None
                return duration if math.isfinite(duration) and duration >= 0 else None
    return None
