"""Observed latencies read from a file, for the `empirical` latency model.

Two layouts, told apart by the first line with a value:

- one latency in milliseconds a line: each observation, all equally likely;
- `UPPER_MS COUNT` a line (space, tab or comma between): a histogram's buckets with
  cumulative counts, as Prometheus exports `_bucket{le="..."}`; a last `+Inf` line is
  allowed when it adds no observation (a draw needs an upper bound).

Blank lines and lines starting with `#` are skipped. Errors name the line, never its
content: the file is read by a shard, possibly at an admin request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from shardstack.common.validation import InvalidInput

MAX_LINES = 1_000_000
MAX_BYTES = 64 * 1024 * 1024
_SEPARATOR = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class Observed:
    """Either `observations` (sorted, in ms) or `buckets` ((upper ms, cumulative count))."""

    observations: tuple[float, ...] = ()
    buckets: tuple[tuple[float, int], ...] = ()


def read_observed(path: Path, max_ms: float) -> Observed:
    """The file's latencies; `InvalidInput` on `path` naming what is wrong and where."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise _bad(f"larger than {MAX_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _bad(f"no file {str(path)!r}") from None
    except IsADirectoryError:
        raise _bad(f"{str(path)!r} is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(f"cannot read {str(path)!r}: {type(exc).__name__}") from None
    rows = [
        (number, _SEPARATOR.split(line.strip()))
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not rows:
        raise _bad("no latencies in the file")
    if len(rows) > MAX_LINES:
        raise _bad(f"more than {MAX_LINES:,} lines")
    if len(rows[0][1]) == 1:
        return Observed(observations=tuple(sorted(_observations(rows, max_ms))))
    return Observed(buckets=_buckets(rows, max_ms))


def _observations(rows: list[tuple[int, list[str]]], max_ms: float) -> list[float]:
    values = []
    for number, parts in rows:
        if len(parts) != 1:
            raise _bad(f"line {number}: one latency a line, as on the first")
        values.append(_ms(parts[0], number, max_ms))
    return values


def _buckets(rows: list[tuple[int, list[str]]], max_ms: float) -> tuple[tuple[float, int], ...]:
    buckets: list[tuple[float, int]] = []
    for number, parts in rows:
        if len(parts) != 2:
            raise _bad(f"line {number}: a bucket is UPPER_MS COUNT, as on the first line")
        count = _count(parts[1], number)
        if parts[0].lower() in ("+inf", "inf"):
            if number != rows[-1][0]:
                raise _bad(f"line {number}: +Inf can only be the last bucket")
            if buckets and count != buckets[-1][1]:
                raise _bad(f"line {number}: +Inf holds observations past every bound")
            continue
        upper = _ms(parts[0], number, max_ms)
        if buckets and upper <= buckets[-1][0]:
            raise _bad(f"line {number}: bounds must increase")
        if buckets and count < buckets[-1][1]:
            raise _bad(f"line {number}: counts are cumulative, so they cannot fall")
        buckets.append((upper, count))
    if not buckets or buckets[-1][1] == 0:
        raise _bad("the buckets hold no observations")
    return tuple(buckets)


def _ms(text: str, number: int, max_ms: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"line {number}: not a number of milliseconds") from None
    if not math.isfinite(value) or not 0 <= value <= max_ms:
        raise _bad(f"line {number}: a latency is from 0 to {max_ms:g} ms")
    return value


def _count(text: str, number: int) -> int:
    """A whole count, written `12` or, as Prometheus writes it, `12.0`."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0 and value.is_integer()):
        raise _bad(f"line {number}: a bucket's count is a whole number, 0 or more")
    return int(value)


def _bad(reason: str) -> InvalidInput:
    return InvalidInput.field("path", reason)
