"""`SHARD_DECISION_LOG`: one JSON line per `/data` request, saying what the shard decided
(request id, shard, attempt, delay, the faults that acted), so a run can be audited and
two runs compared request by request.

Lines are buffered and written by one `os.write` on an `O_APPEND` file at most every
`FLUSH_S` (and when the shard stops), so every shard of a stack can share one file: each
write lands whole at its end. Lines from different shards interleave in time order of the
flushes; sort by request id to compare runs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson

FLUSH_S = 0.2
_FLUSH_BYTES = 64 * 1024


class DecisionLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lines: list[bytes] = []
        self._size = 0
        self._flush_due: asyncio.TimerHandle | None = None

    def record(
        self,
        request_id: str | None,
        shard: int,
        attempt: int,
        delay_s: float,
        faults: list[str],
    ) -> None:
        line = orjson.dumps(
            {
                "request_id": request_id,
                "shard": shard,
                "attempt": attempt,
                "delay_ms": round(delay_s * 1000.0, 3),
                "faults": faults,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
        self._lines.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_BYTES:
            self.flush()
        elif self._flush_due is None:
            self._flush_due = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        if self._flush_due is not None:
            self._flush_due.cancel()
            self._flush_due = None
        if not self._lines or self._fd is None:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        self._size = 0
        written = 0
        while written < len(data):  # a regular file takes it whole; a short write resumes
            written += os.write(self._fd, data[written:])

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
