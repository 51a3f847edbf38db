"""Gateway replicas on the swarm stack (docs/deploy/swarm.md): the
same closed-loop load through the front door with 1 and 3 replicas, at two semaphore
sizes; aggregate throughput and latency from wrk, the shards' concurrent calls from the
shards themselves (each with 1,000 workers and no queue, so `shard_in_service` counts
the calls it serves at once), the stack's permits from Prometheus. One run, printed as
the swarm page's table.

    .venv/bin/python benchmarks/swarm_replicas.py        # about 6 minutes on 2 cores

Needs an active swarm (`docker swarm init --advertise-addr 127.0.0.1`), the images
(tests/deploy/conftest.py builds them; deploy/local-images.sh for the bases) and wrk.
Deploys its own stack, `ssbench`, and removes it.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[1]
STACK = "ssbench"
SECRET = "ssbench_admin_token"
GATEWAY_PORT, PROMETHEUS_PORT = 18000, 19090
IMAGES = {
    "PYTHON_IMAGE": "shardstack-python:bookworm",
    "PROMETHEUS_IMAGE": "shardstack-prometheus:bookworm",
    "HAPROXY_IMAGE": "shardstack-haproxy:bookworm",
}
SHARDS = {"SHARD_LATENCY": "fixed:10", "SHARD_CAPACITY": "workers=1000,queue=0,overflow=503"}


def docker(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, timeout=600,
        env={**os.environ, **IMAGES, **SHARDS, "SHARDSTACK_TOKEN_SECRET": SECRET,
             "GATEWAY_PORT": str(GATEWAY_PORT), "PROMETHEUS_PORT": str(PROMETHEUS_PORT)},
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def query(expr: str) -> float:
    answer = httpx.get(
        f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query",
        params={"query": expr},
        timeout=10,
        trust_env=False,
    ).json()
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else float("nan")


def wait(check: object, what: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(1)
    sys.exit(f"{what}: not within {timeout_s}s")


def complete() -> bool:
    body = httpx.get(
        f"http://127.0.0.1:{GATEWAY_PORT}/api/aggregate", timeout=10, trust_env=False
    ).json()
    return bool(body["status"] == "complete")


def wrk(duration: str, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}", "--latency", "--timeout", "10s",
         f"http://127.0.0.1:{GATEWAY_PORT}/api/aggregate"],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def latency(label: str) -> float:
        found = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        return float(found[1]) * unit[found[2]] if found else float("nan")

    total = re.search(r"(\d+) requests in ([\d.]+)(m|s)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if total is None:
        sys.exit(f"wrk said: {out}")
    seconds = float(total[2]) * (60 if total[3] == "m" else 1)
    answered, refused = int(total[1]), int(non_2xx[1]) if non_2xx else 0
    return {
        "ok_rate": (answered - refused) / seconds,
        "refused": refused / answered if answered else float("nan"),
        "p50": latency("50%"),
        "p99": latency("99%"),
    }


def remove_stack() -> None:
    """The stack, then (once its containers are gone) Prometheus's volume."""
    subprocess.run(["docker", "stack", "rm", STACK], capture_output=True, timeout=120)
    for _ in range(120):
        if not docker("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={STACK}"):
            break
        time.sleep(1)
    subprocess.run(["docker", "volume", "rm", f"{STACK}_prometheus-data"], capture_output=True)
    # The stack's network goes a moment after its containers.
    for _ in range(60):
        if f"{STACK}_default" not in docker("network", "ls", "--format", "{{.Name}}").split():
            break
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--duration", default="30s", help="each load's length (30s)")
    parser.add_argument("-c", "--connections", type=int, default=64, help="wrk connections (64)")
    args = parser.parse_args()
    seconds = int(args.duration.rstrip("s"))
    if SECRET not in docker("secret", "ls", "--format", "{{.Name}}").split():
        docker("secret", "create", SECRET, "-", stdin=secrets.token_urlsafe(24))
    remove_stack()  # a volume a killed run left holds its series, and Prometheus would read them
    stack_file = str(ROOT / "deploy" / "swarm" / "stack.yml")
    prometheus_port = str(ROOT / "deploy" / "swarm" / "prometheus-port.yml")
    docker(
        "stack", "deploy", "--resolve-image", "never",
        "-c", stack_file, "-c", prometheus_port, STACK,
    )  # fmt: skip
    rows = []
    try:
        wait(complete, "a complete aggregate")
        for semaphore in (20, 100):
            docker("service", "update", "--detach=false", "--env-add",
                   f"GATEWAY_SEMAPHORE_SIZE={semaphore}", f"{STACK}_gateway")  # fmt: skip
            for replicas in (1, 3):
                docker("service", "scale", "--detach=false", f"{STACK}_gateway={replicas}")
                wait(lambda r=replicas: query('count(up{job="gateway"} == 1)') == r, "targets")
                wait(complete, "a complete aggregate")
                wrk("5s", args.connections)  # warm: pools filled, breakers closed
                result = wrk(args.duration, args.connections)
                window = f"[{seconds - 5}s:1s]"
                rows.append({
                    "semaphore": semaphore,
                    "replicas": replicas,
                    "permits": query("sum(gateway_semaphore_capacity)"),
                    "shard_mean": query(f"avg_over_time(sum(shard_in_service){window})"),
                    "shard_max": query(f"max_over_time(sum(shard_in_service){window})"),
                    **result,
                })  # fmt: skip
                print(rows[-1], file=sys.stderr)
    finally:
        remove_stack()
    print(f"\n`benchmarks/swarm_replicas.py -d {args.duration} -c {args.connections}`, "
          f"shards fixed:10, 1 worker per replica:\n")  # fmt: skip
    print(
        "| GATEWAY_SEMAPHORE_SIZE | replicas | permits (Prometheus) | 200s/s | shed (503) | "
        "p50 ms | p99 ms | shard calls at once, mean / max |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['semaphore']} | {row['replicas']} | {row['permits']:.0f} | "
            f"{row['ok_rate']:.0f} | {row['refused']:.0%} | {row['p50']:.1f} | "
            f"{row['p99']:.1f} | {row['shard_mean']:.1f} / {row['shard_max']:.0f} |"
        )


if __name__ == "__main__":
    main()
