"""A fleet's control operations, written once for the sync and the async fleet: each is
the admin calls it makes (one per selected shard) and how their answers become a result.
Every input is checked here first, with the validators the shards use, so bad input
raises before any shard is asked; what only a shard can check comes back as its 422."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from gateway.shards import selected_ids_any, with_selection
from shard_sim.capacity import parse_capacity
from shard_sim.decision_log import FLUSH_S
from shardstack.testing.errors import InvalidRequest, ShardRefused, Unauthorised
from shardstack.testing.results import ActiveFault, Decision, InjectedFault, Received, Shard
from shardstack_kernel.faults import parse_fault
from shardstack_kernel.faults.kind import FaultId
from shardstack_kernel.latency import LatencyModel, parse_latency
from shardstack_kernel.problem import problem_errors
from shardstack_kernel.validation import FieldError, InvalidInput

_T = TypeVar("_T")

# What a selector may be: "all", "0,3,5-7", "zone:z1", one id, a list of ids, or
# {"random": k} (with "seed" for a repeatable pick), as the gateway's fault API takes.
Selector = str | int | Sequence[int] | Mapping[str, int]

# A decision is written at most this long after the request (the shards' flush period),
# with a margin for a loaded machine.
DECISIONS_SETTLE_S = FLUSH_S + 0.1

_FAULT_ID: TypeAdapter[str] = TypeAdapter(FaultId)


@dataclass(frozen=True, slots=True)
class Call:
    shard: Shard
    method: str
    path: str
    body: Any = None

    @property
    def content(self) -> bytes | None:
        return None if self.body is None else orjson.dumps(self.body)


@dataclass(frozen=True, slots=True)
class Reply:
    call: Call
    status: int
    body: Any


@dataclass(frozen=True, slots=True)
class Operation(Generic[_T]):
    calls: tuple[Call, ...]
    finish: Callable[[list[Reply]], _T]


@dataclass(frozen=True, slots=True)
class Baseline:
    """A shard's latency and capacity as a fleet found them, to restore after a test."""

    latency: dict[str, Any]
    capacity: dict[str, Any] | None


def named(parameter: str, errors: Sequence[FieldError]) -> list[FieldError]:
    """Errors of a value given as `parameter`, named under it (`latency.p99_ms`)."""
    return [
        FieldError(parameter if not error.field else f"{parameter}.{error.field}", error.reason)
        for error in errors
    ]


def selected(shards: Sequence[Shard], selector: Selector) -> list[Shard]:
    """The shards `selector` names, in id order; `InvalidRequest` naming `selector`."""
    if isinstance(selector, int) and not isinstance(selector, bool):
        selector = str(selector)
    elif isinstance(selector, Sequence) and not isinstance(selector, str):
        selector = list(selector)
    elif isinstance(selector, Mapping):
        selector = dict(selector)
    zones = [shard.zone for shard in shards]
    try:
        ids = selected_ids_any(
            len(shards), selector, "selector", zones=zones if any(zones) else None
        )
    except InvalidInput as exc:
        raise InvalidRequest(exc.errors) from None
    return [shards[index] for index in ids]


def checked(reply: Reply) -> Any:
    """The answer's body, or the error it stands for."""
    if reply.status < 300:
        return reply.body
    body = reply.body if isinstance(reply.body, dict) else {}
    detail = str(body.get("detail") or "no detail")
    if reply.status == 401:
        raise Unauthorised(f"shard {reply.call.shard.id} refused the admin token")
    if reply.status == 422:
        raise InvalidRequest(problem_errors(body))
    raise ShardRefused(reply.call.shard.id, reply.status, detail)


def _each(replies: list[Reply]) -> list[Any]:
    return [checked(reply) for reply in replies]


def _calls(targets: Sequence[Shard], method: str, path: str, body: Any = None) -> tuple[Call, ...]:
    return tuple(Call(shard, method, path, body) for shard in targets)


def inject(
    shards: Sequence[Shard], selector: Selector, kind: str, fields: Mapping[str, Any]
) -> Operation[InjectedFault]:
    targets = selected(shards, selector)
    try:
        fault = with_selection(parse_fault({"kind": kind, **fields}), targets)
    except InvalidInput as exc:
        raise InvalidRequest(exc.errors) from None
    fault_id = fault.id or f"{fault.kind}-{secrets.token_hex(3)}"
    body = {**fault.compact(), "id": fault_id}

    def finish(replies: list[Reply]) -> InjectedFault:
        _each(replies)
        return InjectedFault(fault_id, fault.kind, tuple(shard.id for shard in targets))

    return Operation(_calls(targets, "POST", "/admin/faults", body), finish)


def clear(shards: Sequence[Shard], selector: Selector) -> Operation[int]:
    def finish(replies: list[Reply]) -> int:
        return sum(body["cleared"] for body in _each(replies))

    return Operation(_calls(selected(shards, selector), "DELETE", "/admin/faults"), finish)


def remove(shards: Sequence[Shard], fault_id: str, selector: Selector) -> Operation[int]:
    """Remove one fault by id; the number of shards that held it (a shard without it is
    not an error: a fault may have expired)."""
    try:
        _FAULT_ID.validate_python(fault_id)
    except ValidationError as exc:
        raise InvalidRequest(named("fault_id", InvalidInput.from_pydantic(exc).errors)) from None

    def finish(replies: list[Reply]) -> int:
        return len([checked(reply) for reply in replies if reply.status != 404])

    calls = _calls(selected(shards, selector), "DELETE", f"/admin/faults/{fault_id}")
    return Operation(calls, finish)


def faults(
    shards: Sequence[Shard], selector: Selector
) -> Operation[dict[int, tuple[ActiveFault, ...]]]:
    def finish(replies: list[Reply]) -> dict[int, tuple[ActiveFault, ...]]:
        return {
            body["shard"]: tuple(ActiveFault.from_listing(item) for item in body["faults"])
            for body in _each(replies)
        }

    return Operation(_calls(selected(shards, selector), "GET", "/admin/faults"), finish)


def set_latency(
    shards: Sequence[Shard], selector: Selector, latency: str | Mapping[str, Any] | LatencyModel
) -> Operation[None]:
    try:
        # Without the shards' files: an `empirical` model is read, and checked, by each shard.
        model = parse_latency(latency if isinstance(latency, str) else dict(_dumped(latency)))
    except InvalidInput as exc:
        raise InvalidRequest(named("latency", exc.errors)) from None
    body = model.model_dump(mode="json", exclude_none=True)
    calls = _calls(selected(shards, selector), "PUT", "/admin/latency", body)
    return Operation(calls, _under("latency"))


def _dumped(value: Mapping[str, Any] | LatencyModel) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else value.model_dump(mode="json")


def set_capacity(
    shards: Sequence[Shard], selector: Selector, capacity: str | Mapping[str, Any] | None
) -> Operation[None]:
    try:
        limits = parse_capacity(capacity)
    except InvalidInput as exc:
        raise InvalidRequest(named("capacity", exc.errors)) from None
    targets = selected(shards, selector)
    if limits is None:
        return Operation(_calls(targets, "DELETE", "/admin/capacity"), _nothing)
    body = limits.model_dump(mode="json")
    return Operation(_calls(targets, "PUT", "/admin/capacity", body), _under("capacity"))


def received(shards: Sequence[Shard], selector: Selector) -> Operation[dict[int, Received]]:
    def finish(replies: list[Reply]) -> dict[int, Received]:
        return {body["shard"]: Received.from_answer(body) for body in _each(replies)}

    return Operation(_calls(selected(shards, selector), "GET", "/admin/received"), finish)


def baseline(shards: Sequence[Shard]) -> Operation[dict[int, Baseline]]:
    """Each shard's latency and capacity now."""
    calls = tuple(
        Call(shard, "GET", path)
        for shard in shards
        for path in ("/admin/latency", "/admin/capacity")
    )

    def finish(replies: list[Reply]) -> dict[int, Baseline]:
        bodies = _each(replies)
        return {
            latency["shard"]: Baseline(latency["latency"], capacity["capacity"])
            for latency, capacity in zip(bodies[::2], bodies[1::2], strict=True)
        }

    return Operation(calls, finish)


def reset(shards: Sequence[Shard], baselines: Mapping[int, Baseline]) -> Operation[None]:
    """Every shard as the fleet found it: no faults, its latency and capacity restored,
    nothing received."""
    calls: list[Call] = []
    for shard in shards:
        found = baselines[shard.id]
        calls += [
            Call(shard, "DELETE", "/admin/faults"),
            Call(shard, "PUT", "/admin/latency", found.latency),
            Call(shard, "DELETE", "/admin/received"),
            Call(shard, "DELETE", "/admin/capacity")
            if found.capacity is None
            else Call(shard, "PUT", "/admin/capacity", found.capacity),
        ]
    return Operation(tuple(calls), _nothing)


def forget_received(shards: Sequence[Shard], selector: Selector) -> Operation[None]:
    return Operation(_calls(selected(shards, selector), "DELETE", "/admin/received"), _nothing)


def _nothing(replies: list[Reply]) -> None:
    _each(replies)


def _under(parameter: str) -> Callable[[list[Reply]], None]:
    """A shard's 422 about a value given as `parameter`, named under it, as ours are."""

    def finish(replies: list[Reply]) -> None:
        try:
            _each(replies)
        except InvalidRequest as exc:
            raise InvalidRequest(named(parameter, exc.errors)) from None

    return finish


def decisions(text: str) -> list[Decision]:
    """The decision log's complete lines, in the order they were written."""
    found = []
    for line in text.splitlines():
        if not line.endswith("}"):
            continue  # a line still being written
        item = orjson.loads(line)
        found.append(
            Decision(
                item["request_id"],
                item["shard"],
                item["attempt"],
                item["delay_ms"],
                tuple(item["faults"]),
            )
        )
    return found
