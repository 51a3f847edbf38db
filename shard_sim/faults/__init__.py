"""Fault kinds a shard can inject, one module each, registered in `FAULT_KINDS`.

A fault is written as JSON (`{"kind": "error", "status": 503, "probability": 0.5}`) or,
on the command line and in the per-request header, as words: `error status=503`.

Several faults can be active at once. For each request, every active fault that is on
rolls its probability; those that fire act in this order:

1. `latency`: delays add up;
2. `error`: replaces the answer's status and body;
3. `hang`, `reset`, `malformed`, `slow_body`: the first of these (in this order) takes
   over how the answer is delivered; later ones in the list do not fire.

`down` acts on the data listener rather than on requests; `flap` acts as the kind it wraps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from shard_sim.faults.base import Fault
from shard_sim.faults.down import DownFault
from shard_sim.faults.error import ErrorFault
from shard_sim.faults.flap import FlapFault
from shard_sim.faults.hang import HangFault
from shard_sim.faults.latency import LatencyFault
from shard_sim.faults.malformed import MalformedFault
from shard_sim.faults.reset import ResetFault
from shard_sim.faults.slow_body import SlowBodyFault
from shardstack.validation import FieldError, InvalidInput, field_errors

FAULT_KINDS: Mapping[str, type[Fault]] = {
    "latency": LatencyFault,
    "error": ErrorFault,
    "hang": HangFault,
    "reset": ResetFault,
    "slow_body": SlowBodyFault,
    "malformed": MalformedFault,
    "down": DownFault,
    "flap": FlapFault,
}

# Carries faults for one request (`KIND key=value ...; KIND ...`); honoured with the admin
# token only. Clients send it to the gateway as `SELECTOR KIND key=value ...; ...`.
REQUEST_FAULT_HEADER = "x-shardstack-fault"

__all__ = [
    "FAULT_KINDS",
    "REQUEST_FAULT_HEADER",
    "Fault",
    "parse_fault",
    "parse_fault_words",
    "parse_request_fault",
]


def parse_fault(value: Any, field: str = "") -> Fault:
    """A fault from its JSON form; `InvalidInput` naming each bad field (under `field`)."""
    if isinstance(value, Fault):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInput.field(field or "body", "a fault is a JSON object with a 'kind'")
    kind = value.get("kind")
    prefix = f"{field}." if field else ""
    if not isinstance(kind, str) or kind not in FAULT_KINDS:
        raise InvalidInput.field(
            f"{prefix}kind", f"{kind!r} is not a fault kind; one of {', '.join(FAULT_KINDS)}"
        )
    try:
        return FAULT_KINDS[kind].model_validate(dict(value))
    except ValidationError as exc:
        raise InvalidInput(
            FieldError(f"{prefix}{error.field}".rstrip("."), error.reason)
            for error in field_errors(exc.errors(include_url=False))
        ) from None


def parse_fault_words(words: Sequence[str], field: str | None = None) -> Fault:
    """A fault from `KIND key=value ...`; values are JSON where they parse, else text.
    With `field`, every error is reported there (e.g. the header that carried the words)."""
    try:
        return _parse_words(words)
    except InvalidInput as exc:
        if field is None:
            raise
        raise InvalidInput(FieldError(field, str(error)) for error in exc.errors) from None


def parse_request_fault(words: Sequence[str], field: str = REQUEST_FAULT_HEADER) -> Fault:
    """A fault for one request only, from its words: kinds that act on the listener or over
    time (`down`, `flap`) and `id`/`duration_s` are refused."""
    fault = parse_fault_words(words, field=field)
    if not fault.per_request:
        raise InvalidInput.field(field, f"{fault.kind} cannot act on a single request")
    if fault.duration_s is not None or fault.id is not None:
        raise InvalidInput.field(field, "id and duration_s do not apply to a single request")
    return fault


def _parse_words(words: Sequence[str]) -> Fault:
    if not words:
        raise InvalidInput.field(
            "kind", f"missing; write KIND [key=value ...], KIND one of {', '.join(FAULT_KINDS)}"
        )
    spec: dict[str, Any] = {"kind": words[0]}
    for word in words[1:]:
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise InvalidInput.field("params", f"{word!r} is not key=value")
        spec[key] = _word_value(text)
    return parse_fault(spec)


def _word_value(text: str) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    # A latency like `fixed:10` or a bare word stays text; numbers, booleans, objects parse.
    return value
