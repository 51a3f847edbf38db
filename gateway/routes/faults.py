"""`/admin/faults`: inject, list and clear faults on the shards a selector names.

The gateway validates a fault before it forwards it, so a bad one changes nothing on
any shard; what each shard answered is passed back, shard by shard.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from gateway.answers import (
    FaultAdded,
    FaultListing,
    FaultRemoved,
    FaultsCleared,
    answer,
    problem,
)
from gateway.routes.query import known_query
from gateway.shard_admin import AdminReply
from gateway.shards import MAX_SELECTOR_CHARS, Shard, select, select_any, with_selection
from gateway.state import Gateway, GatewayState
from shardstack_kernel.admin_token import require_bearer
from shardstack_kernel.faults import FAULT_ID_PATTERN, parse_fault
from shardstack_kernel.problem import problem_response
from shardstack_kernel.request_body import DEFAULT_BODY_LIMIT, read_json_body
from shardstack_kernel.validation import FieldError, InvalidInput

# For the document only (its security scheme); the check is the kernel's, on the header.
_BEARER = HTTPBearer(
    scheme_name="adminToken",
    description="the admin token (SHARDSTACK_ADMIN_TOKEN), shared with the shards",
    auto_error=False,
)


async def require_admin(request: Request, gateway: Gateway) -> None:
    require_bearer(request.headers.get("authorization"), gateway.admin_token)


ADMIN = [Security(_BEARER), Depends(require_admin)]
UNAUTHORISED: dict[int | str, dict[str, Any]] = {401: problem("missing or wrong admin token")}
TOO_LARGE = problem(f"the body is larger than {DEFAULT_BODY_LIMIT} bytes")

router = APIRouter(prefix="/admin/faults", dependencies=ADMIN, responses=UNAUTHORISED)


class SelectorQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shards: str | None = Field(None, max_length=MAX_SELECTOR_CHARS)


@router.post(
    "",
    status_code=201,
    responses={
        201: answer(FaultAdded, "every selected shard added the fault"),
        409: answer(
            FaultAdded,
            "some shards already hold a fault of this id, or as many faults as they may; "
            "the others added it; see each shard's entry",
        ),
        413: TOO_LARGE,
        422: problem("the fault or its shards are invalid; no shard changed"),
        502: answer(FaultAdded, "some shards did not add it; see each shard's entry"),
    },
)
async def inject(request: Request, gateway: Gateway) -> Response:
    """Body: a fault (`{"kind": "latency", "latency": "fixed:200", ...}`) plus `shards`:
    `"all"`, `"0,3,5-7"`, `[3, 4]` or `{"random": k, "seed": s}`."""
    body = await read_json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput.field("body", "must be a JSON object: a fault plus 'shards'")
    if body.get("shards") is None:
        raise InvalidInput.field("shards", "required: 'all', '0,3,5-7', [ids] or {\"random\": k}")
    if "selection" in body:
        raise InvalidInput.field("selection", "set by the gateway from 'shards'; leave it out")
    targets = select_any(gateway.shards, body.pop("shards"))
    fault = with_selection(parse_fault(body), targets)
    fault_id = fault.id or f"{fault.kind}-{secrets.token_hex(3)}"
    spec = {**fault.compact(), "id": fault_id}
    replies = await gateway.admin.each(targets, "POST", "/admin/faults", spec)
    if all(reply.status == 422 for reply in replies):
        # What only a shard can check (an empirical latency's file): no shard changed.
        return _relayed_problem(replies[0])
    entries = [_entry(reply, "added", "fault") for reply in replies]
    added = {"id": fault_id, "kind": fault.kind, "shards": entries}
    return _json(added, _added_status(replies))


def _each_shard(model: type[BaseModel], done: str) -> dict[int | str, dict[str, Any]]:
    """The answers of an operation on every selected shard."""
    return {
        200: answer(model, done),
        422: problem("the selector is invalid"),
        502: answer(model, "some shards did not answer; see each shard's entry"),
    }


@router.get(
    "",
    dependencies=[known_query(SelectorQuery)],
    responses=_each_shard(FaultListing, "the active faults, shard by shard"),
)
async def list_faults(query: Annotated[SelectorQuery, Query()], gateway: Gateway) -> Response:
    """Active faults, shard by shard."""
    replies = await gateway.admin.each(_selected(gateway, query), "GET", "/admin/faults")
    entries = [_entry(reply, "ok", "faults") for reply in replies]
    active = sum(len(entry.get("faults") or []) for entry in entries)
    return _json({"active": active, "shards": entries}, 200 if _all_ok(replies) else 502)


@router.delete(
    "",
    dependencies=[known_query(SelectorQuery)],
    responses=_each_shard(FaultsCleared, "every fault removed from the selected shards"),
)
async def clear(query: Annotated[SelectorQuery, Query()], gateway: Gateway) -> Response:
    """Remove every fault from the selected shards (default all)."""
    replies = await gateway.admin.each(_selected(gateway, query), "DELETE", "/admin/faults")
    cleared = sum(reply.body.get("cleared", 0) for reply in replies if reply.ok)
    entries = [_entry(reply, "cleared") for reply in replies]
    return _json({"cleared": cleared, "shards": entries}, 200 if _all_ok(replies) else 502)


@router.delete(
    "/{fault_id}",
    dependencies=[known_query(SelectorQuery)],
    responses={
        200: answer(FaultRemoved, "removed from every selected shard that had it"),
        404: problem("no selected shard has a fault of this id"),
        422: problem("the id or the selector is invalid"),
        502: answer(FaultRemoved, "some shards failed to remove it; see `failed`"),
    },
)
async def remove(
    # Checked before it goes into the shards' URLs.
    fault_id: Annotated[str, Path(pattern=FAULT_ID_PATTERN)],
    query: Annotated[SelectorQuery, Query()],
    gateway: Gateway,
) -> Response:
    """Remove one fault, by id, from every selected shard that has it."""
    replies = await gateway.admin.each(
        _selected(gateway, query), "DELETE", f"/admin/faults/{fault_id}"
    )
    removed = [reply.shard for reply in replies if reply.ok]
    failed = [reply for reply in replies if not reply.ok and reply.status != 404]
    if not removed and not failed:
        raise HTTPException(404, f"no selected shard has a fault {fault_id!r}")
    body = {
        "id": fault_id,
        "removed_from": removed,
        "failed": [_entry(reply, "failed") for reply in failed],
    }
    return _json(body, 502 if failed else 200)


def _selected(gateway: GatewayState, query: SelectorQuery) -> list[Shard]:
    return select(gateway.shards, query.shards)


def _added_status(replies: list[AdminReply]) -> int:
    """201 when every shard added the fault; 409 when those that did not already hold a
    fault of its id (or all the faults they may), so a retry would not help; else 502."""
    failed = [reply for reply in replies if not reply.ok]
    if not failed:
        return 201
    return 409 if all(reply.status == 409 for reply in failed) else 502


def _all_ok(replies: list[AdminReply]) -> bool:
    return all(reply.ok for reply in replies)


def _entry(reply: AdminReply, ok_status: str, key: str | None = None) -> dict[str, Any]:
    """One shard's line in an answer: its status, and `key` copied from its reply."""
    if not reply.ok:
        return {"shard": reply.shard, "status": "failed", "detail": reply.describe()}
    entry: dict[str, Any] = {"shard": reply.shard, "status": ok_status}
    if key is not None and isinstance(reply.body, dict):
        entry[key] = reply.body.get(key)
    return entry


def _relayed_problem(reply: AdminReply) -> Response:
    """A shard's 422, as this gateway's own answer."""
    body = reply.body if isinstance(reply.body, dict) else {}
    errors = [
        FieldError(str(error.get("field", "")), str(error.get("reason", "")))
        for error in body.get("errors", [])
        if isinstance(error, dict)
    ]
    return problem_response(422, str(body.get("detail") or reply.describe()), errors)


def _json(body: Any, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
