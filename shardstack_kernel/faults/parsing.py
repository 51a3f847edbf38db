"""A fault from what a person or a program wrote: JSON (`{"kind": "error", "status": 503}`)
or words (`error status=503`), with every bad field named."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from shardstack_kernel.faults.kind import Fault
from shardstack_kernel.faults.kinds import FAULT_KINDS
from shardstack_kernel.latency import EmpiricalLatency, files_context
from shardstack_kernel.latency_file import LatencyFiles
from shardstack_kernel.validation import FieldError, InvalidInput, field_errors

# Carries faults for one request (`KIND key=value ...; KIND ...`); honoured with the admin
# token only. Clients send it to the gateway as `SELECTOR KIND key=value ...; ...`.
REQUEST_FAULT_HEADER = "x-shardstack-fault"


def parse_fault(value: Any, field: str = "", files: LatencyFiles | None = None) -> Fault:
    """A fault from its JSON form; `InvalidInput` naming each bad field (under `field`).
    An `empirical` latency reads its file from `files`; without, it only names the file."""
    if isinstance(value, Fault):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInput.field(field or "body", "a fault is a JSON object with a 'kind'")
    kind = value.get("kind")
    prefix = f"{field}." if field else ""
    if kind == "flap":
        raise InvalidInput.field(f"{prefix}kind", _flap_moved(value))
    if not isinstance(kind, str) or kind not in FAULT_KINDS:
        raise InvalidInput.field(
            f"{prefix}kind", f"{kind!r} is not a fault kind; one of {', '.join(FAULT_KINDS)}"
        )
    try:
        # Strict, as JSON types: "503" is not a status, nor "0.5" a probability.
        return FAULT_KINDS[kind].model_validate_json(
            orjson.dumps(dict(value)), strict=True, context=files_context(files)
        )
    except orjson.JSONEncodeError:
        raise InvalidInput.field(field or "body", "a fault holds JSON values only") from None
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
    """A fault for one request only, from its words: kinds that act on the listener
    (`down`) and the timing fields (`id`, `duration_s`, `period_s`, `on_s`) are refused."""
    fault = parse_fault_words(words, field=field)
    if not fault.per_request:
        raise InvalidInput.field(field, f"{fault.kind} cannot act on a single request")
    if isinstance(getattr(fault, "latency", None), EmpiricalLatency):
        # A file read per request would cost every request a file read; a shard-wide
        # fault reads it once, off the event loop.
        raise InvalidInput.field(
            field, "an empirical latency reads a file: inject it as a fault, not per request"
        )
    if fault.id is not None or fault.duration_s is not None or fault.flaps:
        raise InvalidInput.field(
            field, "id, duration_s, period_s and on_s do not apply to a single request"
        )
    return fault


def _flap_moved(value: Mapping[str, Any]) -> str:
    """How the former `flap` kind is written now: its timing on the fault it wrapped."""
    inner = value.get("fault")
    example = "down period_s=10 on_s=3"
    if isinstance(inner, Mapping):
        timing = {key: value[key] for key in ("period_s", "on_s", "probability") if key in value}
        with contextlib.suppress(InvalidInput):
            example = parse_fault({**inner, **timing}).words()
    return (
        "flap is no longer a kind: any fault flaps with period_s (and on_s); "
        f"write the fault it wrapped with them, e.g. `{example}`"
    )


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
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # A latency like `fixed:10` or a bare word stays text; numbers, booleans, objects parse.
        return text
