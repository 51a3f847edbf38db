"""The servers `shardstack bench compare` puts side by side, each as a process to start.

All of them are served by gunicorn with the same number of workers, fan out to the same
shards and answer the same shape, so only the fan-out code differs.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gateway.settings import GatewaySettings
from shardstack.launcher.plan import Stack
from shardstack.launcher.supervisor import ProcessSpec
from shardstack_kernel.validation import InvalidInput


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    description: str
    spec: Callable[[Stack], ProcessSpec]


# The gateway-* variants are compared on what their fan-out costs, with none of the
# gateway's defences the seed and the floor lack: it admits every aggregate at its door
# and queues what it cannot serve yet rather than shed it, and neither skips (breakers)
# nor retries a shard. The `gateway` variant keeps them, for the overload experiment.
_FAN_OUT_ONLY = {
    "max_aggregates_in_flight": "1000000",
    "loop_lag_target_ms": "0",
    "max_queued_calls": "1000000",
    "permit_wait_ms": "600000",
    "breaker_failures": "0",
    "retry_budget": "0",
}


def _gateway(name: str, defences: bool = False, **settings: str) -> Callable[[Stack], ProcessSpec]:
    if not defences:
        settings = {**_FAN_OUT_ONLY, **settings}

    def spec(stack: Stack) -> ProcessSpec:
        gateway_spec = stack.gateway_process
        env = {**gateway_spec.env, **{f"GATEWAY_{key.upper()}": v for key, v in settings.items()}}
        return dataclasses.replace(gateway_spec, name=name, env=env)

    return spec


def _app(
    name: str, module: str, worker_class: str, urls_env: str, **extra_env: str
) -> Callable[[Stack], ProcessSpec]:
    def spec(stack: Stack) -> ProcessSpec:
        settings = stack.gateway
        env: Mapping[str, str] = {
            **os.environ,
            urls_env: ",".join(settings.shard_urls),
            **extra_env,
        }
        argv = (
            sys.executable, "-m", "gunicorn", f"{_BASELINES}.{module}:app",
            "--worker-class", worker_class,
            "--workers", str(settings.workers),
            "--bind", settings.bind,
            "--log-level", "warning",
        )  # fmt: skip
        gateway_spec = stack.gateway_process
        return ProcessSpec(name, argv, env, gateway_spec.ready_url, gateway_spec.ports)

    return spec


_BASELINES = "shardstack.bench.baselines"

# The gateway's fan-out with the client it ships with, in the experiments that need one.
FAN_OUT_VARIANT = f"gateway-{GatewaySettings.model_fields['upstream_client'].default}"

DEFAULT_VARIANTS = (
    "gateway-pyreqwest",
    "gateway-aiohttp",
    "gateway-httpx",
    "seed",
    "seed-sniffio",
    "floor",
    "floor-pyreqwest",
)
TAIL_VARIANTS = ("gateway-plain", "gateway-hedged")
OVERLOAD_VARIANTS = ("gateway", "seed")

VARIANTS: Mapping[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(
            "gateway",
            "this gateway as it ships: load shedding, circuit breakers and retries on",
            _gateway("gateway", defences=True),
        ),
        Variant(
            "gateway-pyreqwest",
            "this gateway, pyreqwest client",
            _gateway("gateway-pyreqwest", upstream_client="pyreqwest"),
        ),
        Variant(
            "gateway-aiohttp",
            "this gateway, aiohttp client",
            _gateway("gateway-aiohttp", upstream_client="aiohttp"),
        ),
        Variant(
            "gateway-httpx",
            "this gateway, httpx client",
            _gateway("gateway-httpx", upstream_client="httpx"),
        ),
        Variant(
            "gateway-plain",
            "this gateway with its default client, no hedging",
            _gateway("gateway-plain"),
        ),
        Variant(
            "gateway-hedged",
            "this gateway with its default client, hedging (budget 10 %)",
            _gateway("gateway-hedged", hedge="true"),
        ),
        Variant(
            "seed",
            "the seed pattern as pip installs it today (no sniffio): FastAPI, one "
            "httpx.AsyncClient (limits 200), semaphore 100",
            _app(
                "seed",
                "seed",
                "uvicorn_worker.UvicornWorker",
                "SEED_SHARD_URLS",
                SEED_WITHOUT_SNIFFIO="1",
            ),
        ),
        Variant(
            "seed-sniffio",
            "the seed pattern with sniffio installed",
            _app("seed-sniffio", "seed", "uvicorn_worker.UvicornWorker", "SEED_SHARD_URLS"),
        ),
        Variant(
            "floor",
            "raw aiohttp server and client, nothing else",
            _app("floor", "floor", "aiohttp.GunicornUVLoopWebWorker", "FLOOR_SHARD_URLS"),
        ),
        Variant(
            "floor-pyreqwest",
            "raw aiohttp server, pyreqwest client, nothing else",
            _app(
                "floor-pyreqwest",
                "floor_pyreqwest",
                "aiohttp.GunicornUVLoopWebWorker",
                "FLOOR_SHARD_URLS",
            ),
        ),
    )
}


def chosen(names: Sequence[str]) -> list[Variant]:
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise InvalidInput.field(
            "--variants", f"unknown {', '.join(unknown)}; known: {', '.join(VARIANTS)}"
        )
    return [VARIANTS[name] for name in names]
