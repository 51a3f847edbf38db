"""The one JSON error shape of every shardstack HTTP API: RFC 9457 problem details.

{"type": "about:blank", "title": "Unprocessable Content", "status": 422,
 "detail": "timeout_ms: must be at most 10000",
 "errors": [{"field": "timeout_ms", "reason": "must be at most 10000"}]}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ExceptionHandler

from shardstack_kernel.validation import Conflict, FieldError, InvalidInput

PROBLEM_MEDIA_TYPE = "application/problem+json"

_log = logging.getLogger("shardstack_kernel.problem")


class FieldProblem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details: the shape `problem_body` writes, for API documents."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["about:blank"]
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[FieldProblem] | SkipJsonSchema[None] = Field(
        None, description="each invalid field and why"
    )


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


def problem_errors(body: object) -> list[FieldError]:
    """The field errors a client reads back from a problem body (a 422's); its `detail`
    alone when it names no field."""
    problem = body if isinstance(body, Mapping) else {}
    errors = [
        FieldError(str(error.get("field", "")), str(error.get("reason", "")))
        for error in problem.get("errors") or []
    ]
    return errors or [FieldError("", str(problem.get("detail") or "no detail"))]


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


async def _conflict(request: Request, exc: Exception) -> Response:
    return problem_response(409, str(exc))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = exc.headers
    if exc.status_code == 405:
        # The router names the methods of the first route on the path; a path served
        # by several routes (GET, POST, DELETE /admin/faults) allows all of theirs.
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return problem_response(exc.status_code, str(exc.detail), headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


async def _unhandled(request: Request, exc: Exception) -> Response:
    # Never echo the exception: its text may carry internals. The log has it.
    _log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "internal error; see the service log")


EXCEPTION_HANDLERS: Mapping[Any, ExceptionHandler] = {
    InvalidInput: _invalid_input,
    Conflict: _conflict,
    HTTPException: _http_exception,
    Exception: _unhandled,
}
