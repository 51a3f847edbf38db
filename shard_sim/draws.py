"""Random draws keyed by what they decide rather than by when they are made.

A shard that draws from one stream per process gives request N whatever the stream holds
after N-1 draws, so a replay in another order or concurrency decides differently. Keyed
draws do not: each decision for (seed, request id, shard, attempt, fault) comes from a
hash of that key and a counter, so it is the same whenever and wherever it is made.

Hand-written rather than numpy's counter-based generators (Philox): one BLAKE2b call
gives four draws, where seeding a library generator per request costs more than the
whole decision (Mersenne Twister's `random.Random(seed)`: about 6 µs here), and the
shard pays it on every call.
"""

from __future__ import annotations

import hashlib
import random
import struct

_TO_UNIT = 2.0**-53
# One hash gives four 64-bit words: most requests need only one hash.
_WORDS = struct.Struct("<4Q")


class KeyedRandom(random.Random):
    """A `random.Random` whose outputs are hashes of (key, n) for n = 1, 2, ...: every
    method built on `random()` and `getrandbits()` (gauss, lognormvariate, sample, ...)
    works, seeded by the key alone."""

    def __init__(self, key: str) -> None:
        # The Mersenne Twister state is never used, so it is not seeded (5 µs saved).
        self._base = hashlib.blake2b(key.encode(), digest_size=32)
        self._counter = 0
        self._words: list[int] = []
        self.gauss_next = None

    def seed(self, *args: object, **kwargs: object) -> None:
        raise TypeError("a KeyedRandom is seeded by its key")

    def _next(self) -> int:
        words = self._words
        if not words:
            self._counter += 1
            hashed = self._base.copy()
            hashed.update(self._counter.to_bytes(8))
            words.extend(_WORDS.unpack(hashed.digest()))
        return words.pop()

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
