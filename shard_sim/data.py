"""What one `GET /data` gets: the latency model's delay plus the latency faults', the
shard's records, and the faults that fire shaping the answer or taking over its delivery.

Independent of the server that carries it (shard_sim.data_protocol): every random draw
for a request is made here, at once, from the request's own keyed streams when it has a
request id (shard_sim/decisions.py), else in arrival order; either way a seeded run
replays request for request whatever the delays do to the order answers leave in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from shard_sim import effects
from shard_sim.active_faults import ActiveFault
from shard_sim.decisions import Decisions
from shard_sim.effects.answer import Answer
from shard_sim.state import ShardState
from shardstack_kernel.admin_token import bearer_matches
from shardstack_kernel.faults import REQUEST_FAULT_HEADER, Fault, parse_request_fault
from shardstack_kernel.request_id import ATTEMPT_HEADER, checked_request_id
from shardstack_kernel.validation import FieldError, InvalidInput

MAX_ATTEMPT = 1000


@dataclass(slots=True)
class Prepared:
    """An answer ready to go once `delay_s` has passed; `timing` holds the Server-Timing
    entries for what was injected (the total is added when the answer is written)."""

    answer: Answer
    delay_s: float
    timing: list[str]


@dataclass(slots=True)
class _Acting:
    """A fault acting on this request: a shard-wide one (`active`) or the request's own."""

    fault: Fault
    fault_id: str
    rng: random.Random
    active: ActiveFault | None = None
    delay_s: float = 0.0


class Refused(Exception):
    """The request itself is wrong: answered with a problem, no fault acts."""

    def __init__(self, status: int, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def prepare(
    state: ShardState,
    fault_header: str | None,
    authorization: str | None,
    request_id: str | None = None,
    attempt: str | None = None,
) -> Prepared:
    """Everything decided for one request; `Refused` for a bad request id or attempt, or a
    bad or unauthorised request fault."""
    state.metrics.requests.inc()
    decisions = _decisions(state, request_id, attempt)
    state.received.record(decisions.request_id, decisions.attempt)
    one_off = _request_faults(state, fault_header, authorization, decisions)
    acting = [
        _Acting(active.fault, active.id, rng, active)
        for active, rng in state.faults.firing(decisions)
    ]
    acting += [_Acting(fault, "request", rng) for fault, rng in one_off]

    delay_s = state.latency.sample_ms(decisions.stream("latency", state.rng)) / 1000.0
    for entry in acting:
        entry.delay_s = effects.delay_s(entry.fault, entry.rng)
        delay_s += entry.delay_s
    state.metrics.delay.observe(delay_s)

    body = {"shard": state.shard_id, "delay_ms": delay_s * 1000.0, "records": state.records}
    answer = Answer(200, orjson.dumps(body))
    timing = [f"delay;dur={delay_s * 1000.0:.3f}"]
    counter = state.metrics.faults_injected
    acted = []
    # Shaped in the documented order; `acting` keeps the order the delays were drawn in.
    for entry in sorted(acting, key=lambda entry: entry.fault.order):
        if not effects.shape(entry.fault, answer, entry.rng):
            continue
        acted.append(entry.fault_id)
        counter.labels(entry.fault.kind).inc()
        if entry.active is not None:
            entry.active.applied += 1
        described = f'{entry.fault.kind};desc="{entry.fault_id}"'
        timing.append(
            f"{described};dur={entry.delay_s * 1000.0:.3f}" if entry.delay_s else described
        )
    if state.decision_log is not None:
        state.decision_log.record(
            decisions.request_id, state.shard_id, decisions.attempt, delay_s, acted
        )
    return Prepared(answer, delay_s, timing)


def _decisions(state: ShardState, request_id: str | None, attempt: str | None) -> Decisions:
    try:
        if request_id is not None:
            checked_request_id(request_id)
        number = 0 if attempt is None else _attempt(attempt)
    except InvalidInput as exc:
        raise Refused(422, str(exc), exc.errors) from None
    return Decisions(state.seed, state.shard_id, request_id, number)


def _attempt(text: str) -> int:
    # ASCII digits only: str.isdigit() also takes '²' and other scripts' digits.
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else -1
    if not 0 <= number <= MAX_ATTEMPT:
        raise InvalidInput.field(
            ATTEMPT_HEADER, f"{text[:40]!r} is not a whole number from 0 to {MAX_ATTEMPT}"
        )
    return number


def _request_faults(
    state: ShardState, header: str | None, authorization: str | None, decisions: Decisions
) -> list[tuple[Fault, random.Random]]:
    """Faults carried by this request alone; honoured only with the admin token (the
    gateway adds it when it forwards a request fault)."""
    if header is None:
        return []
    if not bearer_matches(authorization, state.admin_token):
        raise Refused(401, f"{REQUEST_FAULT_HEADER} needs the admin token")
    faults = []
    try:
        for item in header.split(";"):
            fault = parse_request_fault(item.split())
            if fault.selection is not None and state.shard_id not in fault.selection:
                raise InvalidInput.field(
                    REQUEST_FAULT_HEADER, f"selection does not hold shard {state.shard_id}"
                )
            # Keyed by the fault as written, which every shard it names sees alike.
            name = f"request:{fault.words()}"
            rng = decisions.stream(name, state.rng)
            if decisions.fires(fault, name, rng, state.shard_id):
                faults.append((fault, rng))
    except InvalidInput as exc:
        raise Refused(422, str(exc), exc.errors) from None
    return faults
