"""Random draws keyed by what they decide rather than by when they are made.

A shard that draws from one stream per process gives request N whatever the stream holds
after N-1 draws, so a replay in another order or concurrency decides differently. Keyed
draws do not: each decision for (seed, request id, shard, attempt, fault) comes from a
hash of that key and a counter, so it is the same whenever and wherever it is made.

Hand-written rather than numpy's counter-based generators (Philox): a draw here is one
BLAKE2b call (under a microsecond), where seeding any library generator per request costs
several (Mersenne Twister's `random.Random(seed)`: about 5 µs), and the shard pays it on
every call.
"""

from __future__ import annotations

import hashlib
import random

_TO_UNIT = 2.0**-53


class KeyedRandom(random.Random):
    """A `random.Random` whose n-th output is a hash of (key, n): every method built on
    `random()` and `getrandbits()` (gauss, lognormvariate, sample, ...) works, seeded by
    the key alone."""

    def __init__(self, key: str) -> None:
        # The Mersenne Twister state is never used, so it is not seeded (5 µs saved).
        self._base = hashlib.blake2b(key.encode(), digest_size=8)
        self._counter = 0
        self.gauss_next = None

    def seed(self, *args: object, **kwargs: object) -> None:
        raise TypeError("a KeyedRandom is seeded by its key")

    def _next(self) -> int:
        self._counter += 1
        hashed = self._base.copy()
        hashed.update(self._counter.to_bytes(8))
        return int.from_bytes(hashed.digest())

    def random(self) -> float:
        return (self._next() >> 11) * _TO_UNIT

    def getrandbits(self, k: int) -> int:
        if k <= 64:
            return self._next() >> (64 - k) if k else 0
        chunks = (k + 63) // 64
        value = 0
        for _ in range(chunks):
            value = (value << 64) | self._next()
        return value >> (chunks * 64 - k)
