"""Finite capacity: a shard that serves `workers` requests at once, keeps up to `queue`
more waiting (first in first out, or last in first out, which keeps the newest fresh
under overload), and answers what finds the queue full with its `overflow` action.
Unbounded unless set (`SHARD_CAPACITY`, `shardstack up --capacity`, the admin route).

A request's service time is its delay (its latency model plus latency faults), counted
from when a worker takes it; its wait in the queue comes before. A worker is held until
the service time has passed even if the client has gone (the work was under way, as on
a real backend); a waiting request whose client leaves is dropped from the queue.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shardstack_kernel.validation import InvalidInput

UNBOUNDED = "unbounded"


class Overflow(StrEnum):
    UNAVAILABLE = "503"  # with Retry-After
    TOO_MANY = "429"  # with Retry-After
    RESET = "reset"  # the connection reset, no answer
    HANG = "hang"  # no answer until the client leaves


class Order(StrEnum):
    FIFO = "fifo"
    LIFO = "lifo"


class Capacity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(ge=1, le=100_000, description="requests in service at once")
    queue: int = Field(0, ge=0, le=1_000_000, description="requests that may wait")
    overflow: Overflow = Field(Overflow.UNAVAILABLE, description="what a full queue answers")
    order: Order = Field(Order.FIFO, description="which waiting request a free worker takes")
    retry_after_s: int = Field(1, ge=0, le=3600, description="Retry-After of a 503 or 429")

    def spec(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.model_dump(mode="json").items())


def parse_capacity(value: object) -> Capacity | None:
    """`workers=2,queue=2,overflow=503` (or a mapping) as a `Capacity`; `unbounded`, an
    empty string or None as None. `InvalidInput` naming the field if it is bad."""
    if value is None or isinstance(value, Capacity):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text in ("", UNBOUNDED):
            return None
        value = _compact(text)
    if not isinstance(value, Mapping):
        raise InvalidInput.field("capacity", "write it as workers=2,queue=2,overflow=503")
    try:
        return Capacity.model_validate(value)
    except ValidationError as exc:
        raise InvalidInput.from_pydantic(exc) from None


def spec(capacity: Capacity | None) -> str:
    return UNBOUNDED if capacity is None else capacity.spec()


def _compact(text: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise InvalidInput.field(
                "capacity", f"{part.strip()!r} is not key=value, e.g. workers=2,queue=2"
            )
        fields[key.strip()] = raw.strip()
    return fields


class Ticket:
    """One request's place: in service, or waiting to be started by `start`."""

    __slots__ = ("arrived", "in_service", "queued", "start")

    def __init__(self, start: Callable[[], None], in_service: bool) -> None:
        self.start = start
        self.in_service = in_service
        self.queued = not in_service  # it waited (or waits) for a worker
        self.arrived = time.perf_counter()


class CapacityMetrics(Protocol):
    """What a gate records (ShardMetrics has them), so metrics may import this module's
    Overflow without the two importing each other."""

    in_service: Gauge
    queue_depth: Gauge
    queue_wait: Histogram
    refusals: Counter


class CapacityGate:
    """Admission to one shard's workers. Limits may change at run time; what is in
    service or waiting stays, and waiting requests start as the new limits allow."""

    def __init__(self, limits: Capacity | None, metrics: CapacityMetrics) -> None:
        self.limits = limits
        self.in_service = 0
        self._waiting: collections.deque[Ticket] = collections.deque()
        self._metrics = metrics

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def arrive(self, start: Callable[[], None]) -> Ticket | None:
        """A ticket in service (start it now) or waiting (`start` is called when a worker
        takes it); None when the queue is full: answer with `limits.overflow`."""
        limits = self.limits
        if limits is None or self.in_service < limits.workers:
            self.in_service += 1
            self._metrics.in_service.set(self.in_service)
            self._metrics.queue_wait.observe(0.0)
            return Ticket(start, in_service=True)
        if len(self._waiting) < limits.queue:
            ticket = Ticket(start, in_service=False)
            self._waiting.append(ticket)
            self._metrics.queue_depth.set(len(self._waiting))
            return ticket
        self._metrics.refusals.labels(limits.overflow.value).inc()
        return None

    def release(self, ticket: Ticket) -> None:
        """The request is done (or its client left while it waited)."""
        if ticket.in_service:
            ticket.in_service = False
            self.in_service -= 1
            self._metrics.in_service.set(self.in_service)
        else:
            try:
                self._waiting.remove(ticket)
            except ValueError:
                return
            self._metrics.queue_depth.set(len(self._waiting))
        self._start_waiting()

    def set_limits(self, limits: Capacity | None) -> None:
        self.limits = limits
        self._start_waiting()

    def _start_waiting(self) -> None:
        limits = self.limits
        loop: asyncio.AbstractEventLoop | None = None
        while self._waiting and (limits is None or self.in_service < limits.workers):
            lifo = limits is not None and limits.order is Order.LIFO
            ticket = self._waiting.pop() if lifo else self._waiting.popleft()
            ticket.in_service = True
            self.in_service += 1
            self._metrics.queue_wait.observe(time.perf_counter() - ticket.arrived)
            loop = loop or asyncio.get_running_loop()
            # Started from the loop, not from inside the release that freed the worker.
            loop.call_soon(ticket.start)
        self._metrics.in_service.set(self.in_service)
        self._metrics.queue_depth.set(len(self._waiting))
