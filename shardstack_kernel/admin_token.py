"""The admin token guarding every fault route: one secret shared by the gateway and shards.

It comes from `SHARDSTACK_ADMIN_TOKEN`, else from the file `SHARDSTACK_ADMIN_TOKEN_FILE`
names (a Docker or Kubernetes secret, or the compose stack's generated token); where both
are unset, whoever starts the services generates one and prints it once (as Jupyter does).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, SecretStr
from starlette.exceptions import HTTPException

TOKEN_ENV = "SHARDSTACK_ADMIN_TOKEN"
TOKEN_FILE_ENV = "SHARDSTACK_ADMIN_TOKEN_FILE"
MIN_TOKEN_LENGTH = 16
MAX_TOKEN_LENGTH = 512


def _length_problem(token: str) -> str | None:
    if MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
        return None
    return f"must be {MIN_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} characters long, not {len(token)}"


def _strong_enough(token: SecretStr) -> SecretStr:
    problem = _length_problem(token.get_secret_value())
    if problem:
        raise ValueError(problem)
    return token


def _file_contents(path: object) -> object:
    """The token held in the file at `path`, without the line end a secret file often has."""
    if not isinstance(path, str):
        return path
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    problem = _length_problem(token)
    if problem:
        raise ValueError(f"the token in {path} {problem}")
    return token


AdminToken = Annotated[SecretStr, AfterValidator(_strong_enough)]
AdminTokenFile = Annotated[SecretStr, BeforeValidator(_file_contents)]


class AdminTokenSettings(BaseModel):
    """The token's two settings, shared by the gateway's and the shards' settings."""

    admin_token: AdminToken | None = Field(
        None,
        validation_alias=TOKEN_ENV,
        description="bearer token for /admin routes, shared by the gateway and the shards",
    )
    admin_token_file: AdminTokenFile | None = Field(
        None,
        validation_alias=TOKEN_FILE_ENV,
        description=f"a file holding the token (a Docker or Kubernetes secret); {TOKEN_ENV} wins",
    )

    @property
    def configured_token(self) -> SecretStr | None:
        return self.admin_token if self.admin_token is not None else self.admin_token_file


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


def keep_token_file(token_file: Path, given: str | None) -> tuple[str, bool]:
    """The stack's token at `token_file`: `given` where there is one (an exported token
    wins), else the one the file holds, else a new one. Returns it and whether it was made
    now (the one time it is shown)."""
    if given:
        problem = _length_problem(given)
        if problem:
            raise ValueError(f"{TOKEN_ENV} {problem}")
        write_private(token_file, given)
        return given, False
    try:
        kept = token_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = ""
    if kept:
        return kept, False
    token = new_token()
    write_private(token_file, token)
    return token, True


def write_private(path: Path, text: str) -> None:
    # Whole or not at all: readers never see half a token.
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text + "\n")
    os.replace(partial, path)
