"""The admin token guarding every fault route: one secret shared by the gateway and shards.

It comes from `SHARDSTACK_ADMIN_TOKEN`; where that is unset, whoever starts the services
generates one and prints it once (as Jupyter does).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated

from pydantic import AfterValidator, SecretStr
from starlette.exceptions import HTTPException

TOKEN_ENV = "SHARDSTACK_ADMIN_TOKEN"
MIN_TOKEN_LENGTH = 16


def _strong_enough(token: SecretStr) -> SecretStr:
    length = len(token.get_secret_value())
    if not MIN_TOKEN_LENGTH <= length <= 512:
        raise ValueError(f"must be {MIN_TOKEN_LENGTH} to 512 characters long, not {length}")
    return token


AdminToken = Annotated[SecretStr, AfterValidator(_strong_enough)]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_or_new(configured: SecretStr | None, log: logging.Logger, service: str) -> SecretStr:
    """`configured`, or a new token that is logged once so its operator can use it."""
    if configured is not None:
        return configured
    token = SecretStr(new_token())
    log.warning("%s: %s is unset; admin token: %s", service, TOKEN_ENV, token.get_secret_value())
    return token


def bearer_matches(authorization: str | None, token: SecretStr) -> bool:
    scheme, _, presented = (authorization or "").partition(" ")
    # Compared in constant time so the answer's timing does not leak the token.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.get_secret_value().encode()
    )


def require_bearer(authorization: str | None, token: SecretStr) -> None:
    """401 unless `authorization` is `Bearer <token>`."""
    if not bearer_matches(authorization, token):
        raise HTTPException(
            401,
            f"admin routes need 'Authorization: Bearer <token>' with the admin token ({TOKEN_ENV})",
            headers={"WWW-Authenticate": 'Bearer realm="shardstack admin"'},
        )
