"""The CLI's client for the gateway's admin API: finds the token, turns failures into
`GatewayError` with one line a person can act on."""

from __future__ import annotations

import os
from typing import Any

import httpx

from shardstack.control.token_store import load_token, token_path
from shardstack.errors import OperatorError
from shardstack_kernel import topology
from shardstack_kernel.admin_token import TOKEN_ENV
from shardstack_kernel.problem import problem_errors
from shardstack_kernel.validation import InvalidInput

DEFAULT_GATEWAY = f"http://{topology.HOST}:{topology.GATEWAY_PORT}"
GATEWAY_ENV = "SHARDSTACK_GATEWAY"


class GatewayError(OperatorError):
    """The gateway could not be reached, refused us, or answered with an error."""


def resolve_token(gateway_url: str, token: str | None) -> str:
    """`--token`, else SHARDSTACK_ADMIN_TOKEN, else the file `shardstack up` saved."""
    found = token or os.environ.get(TOKEN_ENV) or load_token(gateway_url)
    if not found:
        raise GatewayError(
            f"no admin token for {gateway_url}: pass --token, set {TOKEN_ENV}, or run "
            f"`shardstack up` (it saves one in {token_path(gateway_url)})"
        )
    return found


class GatewayClient:
    """Calls to one gateway; with no token, only its open routes (e.g. /readyz) answer."""

    def __init__(self, gateway_url: str, token: str | None, timeout_s: float = 15.0) -> None:
        self.url = gateway_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url,
            headers={} if token is None else {"authorization": f"Bearer {token}"},
            timeout=timeout_s,
            trust_env=False,
        )

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """(status, body); `GatewayError` or `InvalidInput` unless 2xx, 502 or in `accept`."""
        try:
            response = self._client.request(method, path, json=json, params=params)
        except httpx.ConnectError:
            raise GatewayError(
                f"cannot reach the gateway at {self.url} (is `shardstack up` running? "
                "--gateway or SHARDSTACK_GATEWAY point elsewhere)"
            ) from None
        except httpx.HTTPError as exc:
            raise GatewayError(f"{self.url}: {exc or type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if status < 300 or status == 502 or status in accept:
            return status, body
        detail = body.get("detail") if isinstance(body, dict) else None
        if status == 401:
            raise GatewayError(
                f"the gateway at {self.url} refused the admin token; pass the one it was "
                f"started with (--token or {TOKEN_ENV})"
            )
        if status == 422 and isinstance(body, dict):
            raise InvalidInput(problem_errors(body))
        raise GatewayError(f"{method} {path}: HTTP {status}" + (f": {detail}" if detail else ""))
