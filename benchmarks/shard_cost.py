"""CPU per `/data` answer of one shard, against the servers its data path was chosen from.

    .venv/bin/python benchmarks/shard_cost.py [--duration 10] [--rounds 3]

Each server answers the same bytes (a shard's default payload) on loopback, loaded by
`wrk -t1 -c8` (wrk on one core, the server on the other); the server's CPU (user + system,
from /proc, its whole process tree) is divided by the answers wrk counted. Rounds
alternate between servers and the median is kept.

- the shard's data port (shard_sim.data_protocol): this product, at `fixed:0`;
- the same shard logic (`prepare`) as a raw ASGI app under uvicorn, and as a Starlette
  route under uvicorn (the former data path): the options the data path was chosen from;
- a bare ASGI app under uvicorn (httptools, uvloop) that only sends the bytes: the target;
- the same bytes from granian (Rust) with its RSGI interface, and from nginx (C, one
  worker): how far from a compiled server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shard_sim.settings import ShardSettings
from shardstack.bench.readiness import wait_ready

HOST = "127.0.0.1"
PORT = 18950
HERE = Path(__file__).resolve()


def _payload() -> bytes:
    """Exactly what a default shard sends: its records at `fixed:0`."""
    import orjson

    return orjson.dumps({"shard": 0, "delay_ms": 0.0, "records": _shard_state().records})


# Servers, each started as `python shard_cost.py serve NAME` (or nginx, or the shard).


def _bare_asgi() -> Any:
    body = _payload()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    message = {"type": "http.response.body", "body": body}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(start)
        await send(message)

    return app


def _shard_state() -> Any:
    from pydantic import SecretStr

    from shard_sim.state import NoListener, ShardState

    return ShardState.from_settings(ShardSettings(), SecretStr("x" * 20), NoListener())


async def _answer(state: Any, scope: Any, send: Any) -> None:
    import asyncio

    from shard_sim.data import prepare

    headers = dict(scope["headers"])
    prepared = prepare(
        state,
        headers.get(b"x-shardstack-fault", b"").decode() or None,
        headers.get(b"authorization", b"").decode() or None,
    )
    if prepared.delay_s > 0:
        await asyncio.sleep(prepared.delay_s)
    answer = prepared.answer
    timing = ", ".join(prepared.timing).encode()
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [*answer.head(), (b"server-timing", timing)],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})


def _raw_asgi() -> Any:
    state = _shard_state()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await _answer(state, scope, send)

    return app


def _starlette_route() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    state = _shard_state()

    class Endpoint:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await _answer(state, scope, send)

    return Starlette(routes=[Route("/data", Endpoint(), methods=["GET"])])


def _serve_uvicorn(app: Any) -> None:
    import uvicorn

    from shardstack_kernel.http_protocol import HeadLimitedProtocol

    uvicorn.run(app, host=HOST, port=PORT, loop="uvloop", http=HeadLimitedProtocol,
                access_log=False, log_level="warning", lifespan="off")  # fmt: skip


class _RsgiApp:
    def __init__(self) -> None:
        self.body = _payload()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        protocol.response_bytes(200, [("content-type", "application/json")], self.body)


def _serve_granian() -> None:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    Server(f"{HERE.stem}:rsgi_app", address=HOST, port=PORT, interface=Interfaces.RSGI,
           workers=1, loop=Loops.uvloop, log_enabled=False).serve()  # fmt: skip


rsgi_app = _RsgiApp()  # what granian imports (shard_cost:rsgi_app)

SERVED = {
    "bare-asgi": lambda: _serve_uvicorn(_bare_asgi()),
    "raw-asgi-shard": lambda: _serve_uvicorn(_raw_asgi()),
    "starlette-route-shard": lambda: _serve_uvicorn(_starlette_route()),
    "granian-rsgi": _serve_granian,
}

LABELS = {
    "shard": "the shard's data port (this product)",
    "raw-asgi-shard": "the shard's logic as a raw ASGI app, uvicorn",
    "starlette-route-shard": "the shard's logic as a Starlette route, uvicorn (the former path)",
    "bare-asgi": "bare ASGI app sending the bytes, uvicorn + httptools + uvloop",
    "granian-rsgi": "granian (Rust), RSGI app sending the bytes",
    "nginx": "nginx (C), one worker, `return 200` of the bytes",
}


@contextlib.contextmanager
def _server(name: str, work: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE.parent.parent)])}
    if name == "shard":
        env.update(SHARD_PORT=str(PORT), SHARD_ADMIN_PORT=str(PORT + 1), SHARD_LATENCY="fixed:0")
        argv = [sys.executable, "-m", "shard_sim"]
    elif name == "nginx":
        argv = ["nginx", "-c", str(_nginx_config(work)), "-p", str(work)]
    else:
        argv = [sys.executable, str(HERE), "serve", name]
    process = subprocess.Popen(argv, env=env, cwd=HERE.parent, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        _wait_ready(process)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        _wait_port_free()


def _nginx_config(work: Path) -> Path:
    body = _payload().decode()
    assert not set(body) & {"'", "$"}  # it fits in an nginx single-quoted string
    config = work / "nginx.conf"
    config.write_text(f"""
daemon off; worker_processes 1; error_log stderr error; pid {work}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off; keepalive_requests 1000000;
    client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
    uwsgi_temp_path {work}; scgi_temp_path {work};
    server {{
        listen {HOST}:{PORT};
        location = /data {{ default_type application/json; return 200 '{body}'; }}
    }}
}}
""")
    return config


def _wait_ready(process: subprocess.Popen[bytes]) -> None:
    wait_ready(f"http://{HOST}:{PORT}/data", process, 30, repr(process.args), every_s=0.1)


def _wait_port_free() -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex((HOST, PORT)) != 0:
                return
        time.sleep(0.1)


def _cpu_s(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _wrk(seconds: float) -> int:
    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{seconds:g}s", f"http://{HOST}:{PORT}/data"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    match = re.search(r"(\d+) requests in", out)
    if match is None or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk: unexpected output:\n{out}")
    return int(match.group(1))


def measure(names: list[str], seconds: float, rounds: int) -> dict[str, dict[str, float]]:
    """µs of server CPU per answer, and answers per second, median of `rounds` each."""
    per_answer: dict[str, list[float]] = {name: [] for name in names}
    rates: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="shardstack-shard-cost-") as work:
        for round_index in range(rounds):
            for name in names:
                with _server(name, Path(work)) as process:
                    _wrk(1)  # warm-up
                    before = _cpu_s(process.pid)
                    answers = _wrk(seconds)
                    used = _cpu_s(process.pid) - before
                per_answer[name].append(used / answers * 1e6)
                rates[name].append(answers / seconds)
                print(f"round {round_index + 1}/{rounds} {name}: "
                      f"{per_answer[name][-1]:.1f} µs/answer", file=sys.stderr)  # fmt: skip
    return {
        name: {"us_per_answer": statistics.median(per_answer[name]),
               "answers_per_s": statistics.median(rates[name])}
        for name in names
    }  # fmt: skip


def available() -> list[str]:
    names = ["shard", "raw-asgi-shard", "starlette-route-shard", "bare-asgi"]
    with contextlib.suppress(ImportError):
        import granian  # noqa: F401

        names.append("granian-rsgi")
    if shutil.which("nginx"):
        names.append("nginx")
    return names


def table(results: dict[str, dict[str, float]]) -> str:
    target = results["bare-asgi"]["us_per_answer"]
    lines = [
        "| server | CPU per answer | vs bare ASGI | answers/s (one core) |",
        "|---|---:|---:|---:|",
    ]
    for name, result in results.items():
        cost = result["us_per_answer"]
        lines.append(f"| {LABELS[name]} | {cost:.1f} µs | {cost / target:.2f}x | "
                     f"{result['answers_per_s']:,.0f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        SERVED[sys.argv[2]]()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("shard_cost.py: wrk is needed (Debian: apt-get install wrk)")
    results = measure(available(), args.duration, args.rounds)
    print(json.dumps(results) if args.json else table(results))


if __name__ == "__main__":
    main()
