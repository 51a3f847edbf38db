"""Observed latencies read from a file, for the `empirical` latency model, from one
directory only (`LatencyFiles`).

Two layouts, told apart by the first line with a value:

- one latency in milliseconds a line: each observation, all equally likely;
- `UPPER_MS COUNT` a line (space, tab or comma between): a histogram's buckets with
  cumulative counts, as Prometheus exports `_bucket{le="..."}`; a last `+Inf` line is
  allowed when it adds no observation (a draw needs an upper bound).

Blank lines and lines starting with `#` are skipped. A shard reads these files at an
admin request, so: a path is taken inside the directory only (a relative one is relative
to it; one that leads out, by `..` or a link, is refused with the same words whether or
not it exists), regular files only (a FIFO or a device would block or never end), at most
`MAX_BYTES`, and errors name the line, never its content.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from shardstack_kernel.validation import InvalidInput

# Bounds on what one file costs a shard (200,000 lines: about 0.3 s of a thread, and
# 60 MB at the peak of parsing, measured with tracemalloc; a shard in compose has 128 MiB).
MAX_LINES = 200_000
MAX_BYTES = 4 * 1024 * 1024
LATENCY_DIR_ENV = "SHARD_LATENCY_DIR"
_SEPARATOR = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class Observed:
    """Either `observations` (sorted, in ms) or `buckets` ((upper ms, cumulative count))."""

    observations: tuple[float, ...] = ()
    buckets: tuple[tuple[float, int], ...] = ()


class LatencyFiles:
    """The directory `empirical` latencies are read from, and nothing outside it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))

    def read(self, name: str, max_ms: float) -> Observed:
        """The latencies in the file `name` (relative to the directory, or absolute inside
        it); `InvalidInput` on `path` naming what is wrong and where."""
        real = Path(os.path.realpath(self.root / name))
        if not real.is_relative_to(self.root):
            raise _bad(f"{name!r} is outside the latency directory ({LATENCY_DIR_ENV})")
        return _parse(_read_regular(real, name), max_ms)


def _read_regular(path: Path, name: str) -> str:
    try:
        # Non-blocking, so opening a FIFO returns at once, to be refused below.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _bad(f"no file {name!r} in the latency directory") from None
    except OSError as exc:
        raise _bad(f"cannot open {name!r}: {type(exc).__name__}") from None
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):
            raise _bad(f"{name!r} is a directory")
        if not stat.S_ISREG(status.st_mode):
            raise _bad(f"{name!r} is not a regular file")
        if status.st_size > MAX_BYTES:
            raise _bad(f"larger than {MAX_BYTES // 2**20} MiB")
        with os.fdopen(os.dup(descriptor), "rb") as file:
            data = file.read(MAX_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_BYTES:
        raise _bad(f"larger than {MAX_BYTES // 2**20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"cannot read {name!r}: not UTF-8 text") from None


def _parse(text: str, max_ms: float) -> Observed:
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            if len(rows) == MAX_LINES:
                raise _bad(f"more than {MAX_LINES:,} lines")
            rows.append((number, _SEPARATOR.split(stripped)))
    if not rows:
        raise _bad("no latencies in the file")
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
