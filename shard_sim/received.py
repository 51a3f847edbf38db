"""What a shard's data port was asked since the last reset: how many requests and the
last request ids with their attempts, so a test can assert on what a service of its own
sent (`GET /admin/received`, reset by `DELETE`). Bounded: the last `KEPT` ids only."""

from __future__ import annotations

from collections import deque
from typing import Any

KEPT = 64


class Received:
    __slots__ = ("_recent", "calls")

    def __init__(self) -> None:
        self.calls = 0
        self._recent: deque[tuple[str | None, int]] = deque(maxlen=KEPT)

    def record(self, request_id: str | None, attempt: int) -> None:
        self.calls += 1
        self._recent.append((request_id, attempt))

    def reset(self) -> int:
        """Forget everything; the number of calls forgotten."""
        calls, self.calls = self.calls, 0
        self._recent.clear()
        return calls

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "recent": [
                {"request_id": request_id, "attempt": attempt}
                for request_id, attempt in self._recent
            ],
        }
