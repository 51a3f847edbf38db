"""The request id that ties one aggregate's shard calls together, and the attempt number
that tells a retry or a hedge from the first call: what a shard keys its decisions on."""

from __future__ import annotations

import os

from shardstack_kernel.validation import InvalidInput

REQUEST_ID_HEADER = "x-request-id"
ATTEMPT_HEADER = "x-shardstack-attempt"
MAX_REQUEST_ID_CHARS = 128
# Visible ASCII only: the same characters, and the same count, in every process and
# client that reads the id (a non-ASCII character is one character to one reader and two
# bytes to the next).
REQUEST_ID_PATTERN = f"^[!-~]{{1,{MAX_REQUEST_ID_CHARS}}}$"


def checked_request_id(value: str, field: str = REQUEST_ID_HEADER) -> str:
    """`value` if it can be a request id (`REQUEST_ID_PATTERN`: 1-128 visible ASCII
    characters); `InvalidInput` naming `field` otherwise."""
    if not value:
        raise InvalidInput.field(field, "must not be empty")
    if len(value) > MAX_REQUEST_ID_CHARS:
        raise InvalidInput.field(field, f"{len(value)} characters; at most {MAX_REQUEST_ID_CHARS}")
    bad = next((char for char in value if not "!" <= char <= "~"), None)
    if bad is not None:
        raise InvalidInput.field(
            field, f"holds {ord(bad):#04x}; a request id is visible ASCII characters (! to ~)"
        )
    return value


def new_request_id() -> str:
    return os.urandom(8).hex()


def request_id_or_new(raw: bytes | None) -> str:
    """The request id a client sent, if it is a valid one, else a new one: for answers
    given before the request is validated (a shed 503)."""
    if raw is not None:
        try:
            return checked_request_id(raw.decode("latin-1"))
        except InvalidInput:
            pass
    return new_request_id()
