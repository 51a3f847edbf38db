"""`error`: the answer's status and body replaced by the fault's."""

from __future__ import annotations

import random
from http import HTTPStatus

import orjson

from shard_sim.effects import shapes
from shard_sim.effects.answer import Answer
from shardstack_kernel.faults.kinds.error import ErrorFault


@shapes(ErrorFault)
def shape(fault: ErrorFault, answer: Answer, rng: random.Random) -> bool:
    answer.status = fault.status
    if fault.body is None:
        answer.body = orjson.dumps(
            {"status": fault.status, "title": _phrase(fault.status), "detail": "injected fault"}
        )
        answer.content_type = "application/problem+json"
    else:
        answer.body = fault.body.encode()
        answer.content_type = fault.content_type
    if fault.retry_after_s is not None:
        answer.headers.append((b"retry-after", str(fault.retry_after_s).encode()))
    return True


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
