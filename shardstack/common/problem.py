"""The one JSON error shape of every shardstack HTTP API: RFC 9457 problem details.

{"type": "about:blank", "title": "Unprocessable Content", "status": 422,
 "detail": "timeout_ms: must be at most 10000",
 "errors": [{"field": "timeout_ms", "reason": "must be at most 10000"}]}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ExceptionHandler

from shardstack.common.validation import FieldError, InvalidInput

PROBLEM_MEDIA_TYPE = "application/problem+json"

_log = logging.getLogger("shardstack.common.problem")


def problem_body(status: int, detail: str, errors: Sequence[FieldError] = ()) -> bytes:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [{"field": error.field, "reason": error.reason} for error in errors]
    return orjson.dumps(body)


def problem_response(
    status: int,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        problem_body(status, detail, errors),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


async def _invalid_input(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidInput)
    return problem_response(422, str(exc), exc.errors)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def _unhandled(request: Request, exc: Exception) -> Response:
    # Never echo the exception: its text may carry internals. The log has it.
    _log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "internal error; see the service log")


EXCEPTION_HANDLERS: Mapping[Any, ExceptionHandler] = {
    InvalidInput: _invalid_input,
    HTTPException: _http_exception,
    Exception: _unhandled,
}
