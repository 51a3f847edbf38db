"""Resilience of the real stack (`shardstack up`, gunicorn workers, shard processes) under
steady load: shards killed and frozen, a worker killed, the whole stack stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from shardstack.bench.readiness import wait_ready
from tests.e2e.observe import HeldLoad, scrape, wait_for
from tests.e2e.stack import RunningStack, StartStack, get, gunicorn_workers
from tests.support import HOST, SCHEDULING_MARGIN_S, wait_until

WORKERS = 2
# How long a killed worker's listening socket may take the kernel to close.
TEARDOWN_S = 0.5
DEADLINE_MS = 1000
ANSWERS = {"200", "502", "503"}


def _shard_pid(stack: RunningStack, shard_id: int) -> int:
    pid: int = get(f"{stack.shard_url(shard_id)}/healthz").json()["pid"]
    return pid


def _restart_shard(stack: RunningStack, shard_id: int, log_dir: Path) -> subprocess.Popen[bytes]:
    """A new shard process where `shard_id` was, as an operator bringing it back would."""
    port = stack.shard_base_port + shard_id
    token = stack.admin_headers()["authorization"].removeprefix("Bearer ")
    env = {
        **os.environ,
        "SHARD_ID": str(shard_id),
        "SHARD_PORT": str(port),
        "SHARD_LATENCY": "fixed:5",
        "SHARDSTACK_ADMIN_TOKEN": token,
    }
    with (log_dir / f"shard-{shard_id}-again.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shard_sim"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    wait_ready(f"http://{HOST}:{port}/healthz", process)
    return process


def _wait_for_breakers(
    stack: RunningStack, shard_ids: tuple[int, ...], state: str, timeout_s: float
) -> None:
    """Until every worker's breaker for each of `shard_ids` is in `state`."""
    for shard_id in shard_ids:
        wait_for(
            stack.gateway_url,
            lambda s, shard_id=shard_id: (
                s.get("gateway_circuit_breakers", shard=str(shard_id), state=state) == WORKERS
            ),
            timeout_s=timeout_s,
            what="gateway_circuit_breakers",
        )


def test_chaos_every_request_is_answered_in_time_and_breakers_open_and_close(
    start: StartStack, tmp_path: Path
) -> None:
    stack = start(
        "--workers", str(WORKERS), "--latency", "fixed:5", shards=4,
        GATEWAY_SHARD_TIMEOUT_MS="400", GATEWAY_BREAKER_FAILURES="3",
        GATEWAY_BREAKER_OPEN_MS="1000",
    )  # fmt: skip
    killed, frozen = 1, 2
    killed_pid, frozen_pid = _shard_pid(stack, killed), _shard_pid(stack, frozen)
    url = f"{stack.gateway_url}/api/aggregate?timeout_ms={DEADLINE_MS}"
    replacement = None
    try:
        with HeldLoad(url, threads=4, timeout_s=10, max_s=60) as load:
            time.sleep(1)
            os.kill(killed_pid, signal.SIGKILL)
            os.kill(frozen_pid, signal.SIGSTOP)
            _wait_for_breakers(stack, (killed, frozen), "open", timeout_s=15)
            replacement = _restart_shard(stack, killed, tmp_path)
            os.kill(frozen_pid, signal.SIGCONT)
            # Probes find both well again, in every worker.
            _wait_for_breakers(stack, (killed, frozen), "closed", timeout_s=20)
            time.sleep(0.5)
        body = get(url).json()
        assert body["status"] == "complete", body
    finally:
        os.kill(frozen_pid, signal.SIGCONT)
        if replacement is not None:
            replacement.terminate()
            replacement.wait(10)

    sent = len(load.records)
    assert sent >= 20
    assert set(load.outcomes) <= ANSWERS, load.outcomes  # no transport error, no 500
    assert sum(load.outcomes[status] for status in ANSWERS) == sent
    slowest = max(answered - started for started, answered, _ in load.records)
    assert slowest <= DEADLINE_MS / 1000 + SCHEDULING_MARGIN_S, slowest
    counted = scrape(stack.gateway_url).total("gateway_aggregate_requests_total")
    assert counted == sent + 1  # and the last check's request
    skipped = scrape(stack.gateway_url).total(
        "gateway_shard_requests_total", outcome="circuit_open"
    )
    assert skipped > 0
    print(f"{sent} requests: {dict(load.outcomes)}; slowest {slowest:.3f}s; {skipped:g} skipped")


def test_a_frozen_shard_leaves_every_answer_at_its_deadline(start: StartStack) -> None:
    # The deadline, not the shard timeout, ends these calls: the claim at its own bound.
    deadline_ms = 500
    stack = start(
        "--workers", str(WORKERS), "--latency", "fixed:5", shards=4,
        GATEWAY_SHARD_TIMEOUT_MS="10000", GATEWAY_BREAKER_FAILURES="0",
    )  # fmt: skip
    frozen_pid = _shard_pid(stack, 2)
    os.kill(frozen_pid, signal.SIGSTOP)
    try:
        url = f"{stack.gateway_url}/api/aggregate?timeout_ms={deadline_ms}"
        load = HeldLoad(url, threads=4, timeout_s=10, max_s=5)
        with load:
            time.sleep(4)
            load.stop()
    finally:
        os.kill(frozen_pid, signal.SIGCONT)
    assert len(load.records) >= 8
    assert set(load.outcomes) == {"200"}, load.outcomes  # partial: the other three answered
    durations = sorted(answered - started for started, answered, _ in load.records)
    assert durations[0] >= deadline_ms / 1000 - 0.01  # each waited for the frozen shard
    assert durations[-1] <= deadline_ms / 1000 + SCHEDULING_MARGIN_S, durations[-5:]
    print(f"{len(durations)} answers between {durations[0]:.3f}s and {durations[-1]:.3f}s")


def test_sigterm_under_load_finishes_every_request_in_flight(start: StartStack) -> None:
    stack = start("--workers", str(WORKERS), "--latency", "fixed:800", shards=4)
    url = f"{stack.gateway_url}/api/aggregate?timeout_ms=5000"
    with HeldLoad(url, threads=8, timeout_s=20, max_s=60) as load:
        wait_for(
            stack.gateway_url,
            lambda s: s.get("gateway_aggregates_in_flight") >= 6,
            timeout_s=20,
            what="gateway_aggregates_in_flight",
        )
        load.stop_sending()
        # The stop begins here; nothing new is sent, so what the scrape finds in flight
        # was in flight then (an answer during the scrape counts as after the stop).
        stopped_at = time.monotonic()
        in_flight = scrape(stack.gateway_url).get("gateway_aggregates_in_flight")
        stack.process.send_signal(signal.SIGTERM)
        assert stack.process.wait(60) == 0
    cut = [outcome for _, _, outcome in load.records if outcome != "200"]
    assert cut == [], load.outcomes
    answered_after = sum(answered > stopped_at for _, answered, _ in load.records)
    assert answered_after >= in_flight - 1  # the one scrape may have raced an answer
    print(f"{answered_after} requests in flight at SIGTERM, all answered 200")


def _accept_queue(pid: int, port: int) -> int:
    """Connections waiting on the worker's own listening socket (each worker has one, with
    SO_REUSEPORT): the kernel resets them when the worker dies, so they are its own too."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    queued = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        listening = fields[3] == "0A"
        if listening and int(fields[1].split(":")[1], 16) == port and fields[9] in inodes:
            queued += int(fields[4].split(":")[1], 16)  # rx_queue: the accept queue's length
    return queued


def test_a_killed_worker_fails_only_its_own_requests(start: StartStack) -> None:
    stack = start(
        "--workers", str(WORKERS), "--latency", "fixed:1000", shards=4,
        GATEWAY_SHARD_TIMEOUT_MS="5000",
    )  # fmt: skip
    port = int(stack.gateway_url.rsplit(":", 1)[1])
    url = f"{stack.gateway_url}/api/aggregate?timeout_ms=8000"
    with HeldLoad(url, threads=8, timeout_s=20, max_s=60) as load:
        wait_for(
            stack.gateway_url,
            lambda s: s.get("gateway_aggregates_in_flight") >= 6,
            timeout_s=20,
            what="gateway_aggregates_in_flight",
        )

        def clients(worker: psutil.Process) -> list[object]:
            return [
                c for c in worker.net_connections("tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
            ]  # fmt: skip

        # The worker holding the most clients (the workers accept unevenly, and one may
        # hold none at a given moment); what it holds is what a crash may cost, no more.
        deadline = time.monotonic() + 10
        while True:
            held = {pid: clients(psutil.Process(pid)) for pid in gunicorn_workers(stack)}
            victim_pid = max(held, key=lambda pid: len(held[pid]))
            if held[victim_pid] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        victim = psutil.Process(victim_pid)
        # Frozen first, so that what it holds is counted with no accept racing the count:
        # its clients, and what waits in its accept queue, are then all it will lose.
        victim.suspend()
        # SIGSTOP takes effect when the kernel next schedules it: count only once stopped.
        wait_until(lambda: victim.status() == psutil.STATUS_STOPPED, 5, "the worker stopped")
        its_clients = clients(victim)
        queued = _accept_queue(victim_pid, port)
        killed_at = time.monotonic()
        victim.kill()
        assert its_clients, "no worker held a client"
        time.sleep(2.5)  # the other worker's requests finish; new ones go on
    failed = {outcome: n for outcome, n in load.outcomes.items() if outcome != "200"}
    its_own = len(its_clients) + queued
    # Each request is a new connection: one sent as the worker dies can still reach its
    # listening socket (SO_REUSEPORT) until the kernel has closed it, and is lost with it.
    # Those are its own too; a failure sent any later would not be.
    failures = [(sent, outcome) for sent, _, outcome in load.records if outcome != "200"]
    before = [outcome for sent, outcome in failures if sent < killed_at]
    later = [outcome for sent, outcome in failures if sent >= killed_at + TEARDOWN_S]
    assert 1 <= len(before) <= its_own, (failed, len(its_clients), queued)
    assert later == [], (failures, killed_at)
    assert set(failed) <= {"RemoteProtocolError", "ReadError"}, failed
    assert load.outcomes["200"] >= 8  # the other worker kept answering, and the new one
    print(
        f"killed worker held {len(its_clients)} requests and {queued} connections not yet "
        f"accepted; {sum(failed.values())} failed"
    )

    after = wait_for(
        stack.gateway_url,
        lambda s: (
            s.get("gateway_aggregates_in_flight") == 0 and s.get("gateway_semaphore_in_use") == 0
        ),
        timeout_s=20,
        what="gateway_",
    )
    assert after.get("gateway_semaphore_capacity") == 100 * WORKERS
    assert len(gunicorn_workers(stack)) == WORKERS
