"""Finite capacity on a real shard process: workers, a FIFO or LIFO queue, the overflow
actions, a worker held after its client left, runtime changes on the admin port, and
the spec refused by name when it is bad."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shard_sim.capacity import Capacity, Order, Overflow, parse_capacity
from shard_sim.capacity import spec as capacity_spec
from shardstack.bench.exposition import Samples
from shardstack_kernel.validation import InvalidInput
from tests.support import ADMIN, ShardProcess, StartShard, assert_problem


def test_the_spec_is_read_and_written_back() -> None:
    capacity = parse_capacity("workers=2, queue=2, overflow=503")
    assert capacity == Capacity(workers=2, queue=2)
    assert isinstance(capacity, Capacity)
    assert capacity.spec() == "workers=2,queue=2,overflow=503,order=fifo,retry_after_s=1"
    assert parse_capacity(capacity.spec()) == capacity
    lifo = parse_capacity({"workers": 1, "overflow": "reset", "order": "lifo"})
    assert lifo == Capacity(workers=1, overflow=Overflow.RESET, order=Order.LIFO)
    for unbounded in (None, "", "unbounded"):
        assert parse_capacity(unbounded) is None
    assert capacity_spec(None) == "unbounded"


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ("workers=0", "workers", "greater than or equal to 1"),
        ("queue=2", "workers", "required"),
        ("workers=2,queue=-1", "queue", "greater than or equal to 0"),
        ("workers=2,overflow=502", "overflow", "'503', '429', 'reset' or 'hang'"),
        ("workers=2,order=random", "order", "'fifo' or 'lifo'"),
        ("workers=2,threads=4", "threads", "not permitted"),
        ("workers=two", "workers", "valid integer"),
        ("workers", "capacity", "not key=value"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field(spec: str, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_capacity(spec)
    [error] = caught.value.errors
    assert error.field == field
    assert reason in error.reason


def _at_once(url: str, count: int, timeout_s: float = 10) -> list[tuple[int, float, str]]:
    """`count` GETs, each on its own connection, released together: (status, seconds,
    Server-Timing) each, in the order sent."""
    barrier = threading.Barrier(count)

    def one(_: int) -> tuple[int, float, str]:
        with httpx.Client(trust_env=False, timeout=timeout_s) as client:
            barrier.wait()
            started = time.perf_counter()
            answer = client.get(url)
            elapsed = time.perf_counter() - started
            return answer.status_code, elapsed, answer.headers.get("server-timing", "")

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@contextlib.contextmanager
def _worker_taken(shard: ShardProcess, settle_s: float = 0.1) -> Iterator[None]:
    """For the block, one request holds a worker (sent `settle_s` before it begins)."""
    with httpx.Client(trust_env=False, timeout=5) as client:
        holder = threading.Thread(target=client.get, args=(f"{shard.url}/data",))
        holder.start()
        time.sleep(settle_s)
        yield
        holder.join()


def _metric(shard: ShardProcess, name: str, **labels: str) -> float:
    samples = Samples.parse(httpx.get(f"{shard.admin_url}/metrics", trust_env=False).text)
    return samples.get(name, **labels)


def test_two_workers_and_two_places_answer_four_of_ten_and_refuse_six_at_once(
    start_shard: StartShard,
) -> None:
    shard = start_shard(0, "fixed:300", CAPACITY="workers=2,queue=2,overflow=503")
    results = _at_once(f"{shard.url}/data", 10)
    answered = sorted(elapsed for status, elapsed, _ in results if status == 200)
    refused = [elapsed for status, elapsed, _ in results if status == 503]
    assert (len(answered), len(refused)) == (4, 6), results
    # The refusals come at once, before any answer; two answers after one service time,
    # two after two (upper bounds for a loaded 2-core machine).
    assert max(refused) < min(0.25, answered[0]), refused
    assert 0.3 <= answered[0] <= answered[1] < 0.6, answered
    assert 0.6 <= answered[2] <= answered[3] < 1.2, answered
    queued = [timing for status, _, timing in results if status == 200 and "queue;dur=" in timing]
    assert len(queued) == 2, results
    for timing in queued:
        waited_ms = float(timing.split("queue;dur=")[1].split(",")[0])
        assert 250 <= waited_ms <= 500, timing
    assert _metric(shard, "shard_capacity_refusals_total", overflow="503") == 6
    assert _metric(shard, "shard_queue_wait_seconds_count") == 4
    assert _metric(shard, "shard_in_service") == 0
    assert _metric(shard, "shard_queue_depth") == 0


def test_a_refusal_says_why_and_when_to_come_back(start_shard: StartShard) -> None:
    shard = start_shard(2, "fixed:300", CAPACITY="workers=1,overflow=429,retry_after_s=3")
    statuses = sorted(status for status, _, _ in _at_once(f"{shard.url}/data", 2))
    assert statuses == [200, 429]
    with _worker_taken(shard), httpx.Client(trust_env=False) as other:
        refused = other.get(f"{shard.url}/data")
    assert refused.headers["retry-after"] == "3"
    assert_problem(refused, 429)
    assert "shard 2 is at capacity: 1 in service and 0 waiting" in refused.json()["detail"]


def test_lifo_serves_the_newest_waiting_request_first(start_shard: StartShard) -> None:
    shard = start_shard(0, "fixed:300", CAPACITY="workers=1,queue=2,order=lifo")
    finished: dict[str, float] = {}

    def get(name: str) -> None:
        with httpx.Client(trust_env=False, timeout=10) as client:
            assert client.get(f"{shard.url}/data").status_code == 200
        finished[name] = time.perf_counter()

    threads = []
    for name in ("first", "older", "newest"):
        threads.append(threading.Thread(target=get, args=(name,)))
        threads[-1].start()
        time.sleep(0.1)  # all three sent within the first one's 300 ms of service
    for thread in threads:
        thread.join()
    assert finished["first"] < finished["newest"] < finished["older"], finished


def test_a_reset_overflow_cuts_the_connection(start_shard: StartShard) -> None:
    shard = start_shard(0, "fixed:300", CAPACITY="workers=1,overflow=reset")
    refused = httpx.Client(trust_env=False, timeout=5)
    with _worker_taken(shard), refused, pytest.raises(httpx.TransportError):
        refused.get(f"{shard.url}/data")
    assert _metric(shard, "shard_capacity_refusals_total", overflow="reset") == 1


def test_a_hang_overflow_answers_nothing_and_the_shard_goes_on(start_shard: StartShard) -> None:
    shard = start_shard(0, "fixed:200", CAPACITY="workers=1,overflow=hang")
    waiting = httpx.Client(trust_env=False, timeout=1.0)
    with _worker_taken(shard, settle_s=0.05), waiting, pytest.raises(httpx.ReadTimeout):
        waiting.get(f"{shard.url}/data")
    with httpx.Client(trust_env=False, timeout=5) as client:
        assert client.get(f"{shard.url}/data").status_code == 200


def test_a_worker_stays_busy_after_its_client_left_and_a_waiting_one_is_dropped(
    start_shard: StartShard,
) -> None:
    shard = start_shard(0, "fixed:400", CAPACITY="workers=1,queue=1")
    url = f"{shard.url}/data"
    sent_first = time.perf_counter()
    with httpx.Client(trust_env=False, timeout=0.1) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.get(url)  # in service; leaves after 0.1 s
        with pytest.raises(httpx.ReadTimeout):
            impatient.get(url)  # waits in the queue; leaves after 0.1 s
    with httpx.Client(trust_env=False, timeout=5) as client:
        # The worker is still on the first request (400 ms of service); the queue has
        # room again, since the second left it.
        answer = client.get(url)
    assert answer.status_code == 200
    # Served after the first's whole service time, then its own.
    assert time.perf_counter() - sent_first >= 0.8
    assert "queue;dur=" in answer.headers["server-timing"]


def test_capacity_changes_at_run_time_on_the_admin_port(start_shard: StartShard) -> None:
    shard = start_shard(1, "fixed:500", CAPACITY="workers=1,queue=5")
    admin = f"{shard.admin_url}/admin/capacity"
    with httpx.Client(trust_env=False, headers=ADMIN, timeout=5) as client:
        state = client.get(admin).json()
        assert state["spec"] == "workers=1,queue=5,overflow=503,order=fifo,retry_after_s=1"
        assert_problem(client.put(admin, json={"workers": 0}), 422, ["workers"])
        assert_problem(client.put(admin, json={"queue": 1}), 422, ["workers"])
        assert_problem(client.put(admin, content=b"null"), 422, ["workers"])
        assert client.get(admin).json()["spec"] == state["spec"]  # nothing changed

        # Three at once on one worker, then the shard unbounded: the waiting two start.
        def unbound_soon() -> None:
            time.sleep(0.1)
            assert client.delete(admin).json()["capacity"] is None

        changer = threading.Thread(target=unbound_soon)
        changer.start()
        results = _at_once(f"{shard.url}/data", 3)
        changer.join()
        assert [status for status, _, _ in results] == [200, 200, 200]
        # One at a time, the last would answer at 1.5 s.
        assert max(elapsed for _, elapsed, _ in results) < 1.0, results
        assert client.get(admin).json()["spec"] == "unbounded"

        answer = client.put(admin, json={"workers": 3, "overflow": "hang"})
        assert answer.json()["capacity"]["overflow"] == "hang"
        assert answer.json()["in_service"] == 0
    unauthorised = httpx.get(admin, trust_env=False)
    assert_problem(unauthorised, 401)
