"""What each fault kind does to a request it fires on, by kind: the shard's side of the
fault vocabulary (shardstack_kernel/faults/ says what a kind is; the gateway validates
against that and never imports this). One module per kind that acts on requests:

- a `delay` adds seconds before the answer (latency faults add up);
- a `shape` changes the answer's content, or takes over its delivery through the `Wire`
  (at most one fault delivers an answer; see `Answer.take_delivery`).

A kind that acts on the data listener (`down`) needs neither: the shard's server acts on
it. Every other kind must have one, which loading this package checks.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
from collections.abc import Callable
from typing import Any, TypeVar

from shard_sim.effects.answer import Answer
from shardstack_kernel.faults import FAULT_KINDS, Fault

F = TypeVar("F", bound=Fault)
Delay = Callable[[Any, random.Random], float]
Shape = Callable[[Any, Answer, random.Random], bool]

_DELAYS: dict[type[Fault], Delay] = {}
_SHAPES: dict[type[Fault], Shape] = {}


def delays(kind: type[F]) -> Callable[[Callable[[F, random.Random], float]], Delay]:
    """Register the function as `kind`'s delay: seconds before the answer."""

    def register(delay: Callable[[F, random.Random], float]) -> Delay:
        _DELAYS[kind] = delay
        return delay

    return register


def shapes(kind: type[F]) -> Callable[[Callable[[F, Answer, random.Random], bool]], Shape]:
    """Register the function as `kind`'s shape: False when it could not act (the
    answer's delivery already taken by a fault before it)."""

    def register(shape: Callable[[F, Answer, random.Random], bool]) -> Shape:
        _SHAPES[kind] = shape
        return shape

    return register


def delay_s(fault: Fault, rng: random.Random) -> float:
    delay = _DELAYS.get(type(fault))
    return 0.0 if delay is None else delay(fault, rng)


def shape(fault: Fault, answer: Answer, rng: random.Random) -> bool:
    act = _SHAPES.get(type(fault))
    return True if act is None else act(fault, answer, rng)


def _load() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    missing = [
        name
        for name, kind in FAULT_KINDS.items()
        if not kind.on_listener and kind not in _DELAYS and kind not in _SHAPES
    ]
    if missing:
        raise ImportError(f"fault kinds with no effect in shard_sim/effects/: {missing}")


_load()
