"""Where one request's random decisions come from: its latency, each fault's roll, the
shards a correlated fault picks.

With a request id (the gateway sends one on every call, with the attempt number), every
decision is drawn from a hash of (seed, request id, shard, attempt, what decides), so the
same seed and request ids give the same decisions whatever the order and concurrency of
the requests (shard_sim/draws.py). Without one (a client calling the shard
directly), the shard draws from its per-process streams, in arrival order, as a seeded
shard always has.

Correlated faults need the other shards' view of the same request, so they are decided
from draws every shard makes alike (the shard left out of the key):

- `k_of_n`: one shared roll of the probability, then the same k shards sampled from the
  fault's selection on every shard; each fires if it is among them.
- `correlation` c: one shared draw ties the request with chance c, and then every shard
  uses the shared roll, else its own. Each shard still fires with the fault's probability
  p, and two shards' firings correlate by exactly c: P(both) = c p + (1 - c) p².

Without a request id a correlated fault cannot be coordinated: `k_of_n` then fires with
chance p k / n on each shard (the same rate, independent), and `correlation` is ignored.
"""

from __future__ import annotations

import random

from shard_sim.draws import KeyedRandom
from shardstack_kernel.faults import Fault

# Joins the parts of a key; no request id or fault id can hold it.
_SEP = "\x1f"


class Decisions:
    __slots__ = ("_prefix", "_shared_prefix", "attempt", "request_id")

    def __init__(self, seed: int, shard_id: int, request_id: str | None, attempt: int) -> None:
        self.request_id = request_id
        self.attempt = attempt
        if request_id is not None:
            self._prefix = _SEP.join((str(seed), request_id, str(shard_id), str(attempt), ""))
            self._shared_prefix = _SEP.join((str(seed), request_id, "*", str(attempt), ""))

    @property
    def keyed(self) -> bool:
        return self.request_id is not None

    def stream(self, name: str, fallback: random.Random) -> random.Random:
        """The draws of one decision-maker (`latency`, a fault id) on this request."""
        if self.request_id is None:
            return fallback
        return KeyedRandom(self._prefix + name)

    def fires(self, fault: Fault, name: str, own: random.Random, shard_id: int) -> bool:
        """Whether `fault` fires on this request; `own` is its stream on this shard."""
        probability = fault.probability
        k = fault.k_of_n
        if k is not None:
            members = fault.selection or (shard_id,)
            if self.request_id is None:
                return own.random() < probability * k / len(members)
            shared = KeyedRandom(self._shared_prefix + name)
            if probability < 1 and shared.random() >= probability:
                return False
            return shard_id in shared.sample(sorted(members), k)
        if fault.correlation and self.request_id is not None:
            shared = KeyedRandom(self._shared_prefix + name)
            if shared.random() < fault.correlation:
                return shared.random() < probability
        if probability == 1:
            return True
        return own.random() < probability
