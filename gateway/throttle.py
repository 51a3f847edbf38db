"""Client-side adaptive throttling (Google SRE book, "Handling Overload"): a shard that
turns away much of what it is sent is sent less, the rest refused here at no cost to it.

Per shard and worker, over the last `window_s`: `requests`, the calls this worker meant to
send (those refused here included), and `accepts`, the usable answers it got. A call is
refused locally with probability max(0, (requests - k * accepts) / (requests + 1)): with
k = 2 a shard still gets about twice what it serves, enough to see it recover.

Our own few lines: no maintained Python library implements this rule, and it runs on
every shard call, so it is a handful of integer updates over a ring of time buckets.
"""

from __future__ import annotations

from collections.abc import Iterable

_BUCKETS = 10


class AdaptiveThrottle:
    """One shard's counts in one worker. `allow()` before a call; if it says yes, then
    `accepted()` for a usable answer or `withdraw()` if the call was never made."""

    __slots__ = (
        "_accepts",
        "_bucket",
        "_bucket_s",
        "_k",
        "_requests",
        "_total_accepts",
        "_total_requests",
    )

    def __init__(self, k: float, window_s: float) -> None:
        self._k = k
        self._bucket_s = window_s / _BUCKETS
        self._requests = [0] * _BUCKETS
        self._accepts = [0] * _BUCKETS
        self._total_requests = 0
        self._total_accepts = 0
        self._bucket = 0

    def refusal_probability(self) -> float:
        requests = self._total_requests
        return max(0.0, (requests - self._k * self._total_accepts) / (requests + 1))

    def allow(self, now: float, draw: float) -> bool:
        """Count a request at `now` (seconds, monotonic) and say whether to send it;
        `draw` is uniform in [0, 1)."""
        self._advance(now)
        probability = self.refusal_probability()
        self._requests[self._bucket % _BUCKETS] += 1
        self._total_requests += 1
        return draw >= probability

    def accepted(self, now: float) -> None:
        """The call got a usable answer."""
        self._advance(now)
        self._accepts[self._bucket % _BUCKETS] += 1
        self._total_accepts += 1

    def withdraw(self) -> None:
        """The call was never made (no permit, or cancelled): it was not a request."""
        index = self._bucket % _BUCKETS
        if self._requests[index]:
            self._requests[index] -= 1
            self._total_requests -= 1

    def _advance(self, now: float) -> None:
        bucket = int(now / self._bucket_s)
        if bucket <= self._bucket:
            return
        for expired in range(max(self._bucket + 1, bucket - _BUCKETS + 1), bucket + 1):
            index = expired % _BUCKETS
            self._total_requests -= self._requests[index]
            self._total_accepts -= self._accepts[index]
            self._requests[index] = 0
            self._accepts[index] = 0
        self._bucket = bucket


class Throttles:
    """Every shard's throttle in this worker."""

    def __init__(self, shard_ids: Iterable[int], k: float, window_s: float) -> None:
        self.skip_detail = f"refused here: the shard served too few of its recent calls (k={k:g})"
        self._throttles = {shard_id: AdaptiveThrottle(k, window_s) for shard_id in shard_ids}

    def __getitem__(self, shard_id: int) -> AdaptiveThrottle:
        return self._throttles[shard_id]
