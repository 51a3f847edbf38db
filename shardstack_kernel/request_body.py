"""Reading a JSON request body with a size limit, refusing what is too big or not JSON."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request

from shardstack_kernel.validation import InvalidInput

DEFAULT_BODY_LIMIT = 64 * 1024
# How deep any input the APIs take may nest: a JSON body, a scenario file's YAML.
MAX_DEPTH = 16


async def read_json_body(request: Request, limit: int = DEFAULT_BODY_LIMIT) -> Any:
    """The parsed body; 413 past `limit` bytes (checked while streaming), 422 if not JSON."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"request body is larger than {limit} bytes")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput.field("body", f"not valid JSON: {exc}") from None
    return _integral_numbers(value, 0)


def _integral_numbers(value: Any, depth: int) -> Any:
    """JSON numbers by value, as JSON Schema compares them: `6.0` is the integer 6 (up to
    64 bits; beyond, no field takes it either way). No body the APIs take nests deeper
    than `MAX_DEPTH`; one that does is refused here, before anything walks it further."""
    if type(value) is float and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list | dict):
        if depth == MAX_DEPTH:
            raise InvalidInput.field("body", f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, list):
            return [_integral_numbers(item, depth + 1) for item in value]
        return {key: _integral_numbers(item, depth + 1) for key, item in value.items()}
    return value
