"""shardstack.testing's Fleet over real shard processes: every control method through
the shards' own admin API, its errors as types naming the field, and nothing left
running whatever happens to the fleet or to the process that started it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shardstack.testing import (
    AsyncFleet,
    Fleet,
    FleetError,
    FleetStartError,
    InvalidRequest,
    ShardUnreachable,
    Unauthorised,
)
from shardstack.testing.ports import free_port_block, is_free
from shardstack_kernel.topology import ADMIN_PORT_OFFSET
from tests.support import HOST, wait_until

SHARDS = 4


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SHARDS, latency="fixed:5", zones=2, seed=7) as started:
        yield started


@pytest.fixture
def clean(fleet: Fleet) -> Iterator[Fleet]:
    yield fleet
    fleet.reset()


def _data(fleet: Fleet, shard: int, request_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{fleet.urls[shard]}/data", headers={"x-request-id": request_id})
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def _admin(fleet: Fleet, shard: int, path: str) -> Any:
    headers = {"authorization": f"Bearer {fleet.token}"}
    return httpx.get(f"{fleet.shards[shard].admin_url}{path}", headers=headers).json()


def test_a_fault_reaches_the_selected_shards_and_is_listed_removed_and_cleared(
    clean: Fleet,
) -> None:
    fault = clean.inject("zone:z1", "latency", latency="fixed:300", duration_s=60)
    assert fault.kind == "latency"
    assert fault.shards == (1, 3)
    assert _data(clean, 1, "a")["delay_ms"] == pytest.approx(305.0)
    assert _data(clean, 0, "b")["delay_ms"] == pytest.approx(5.0)
    listed = clean.faults()
    assert [active.id for active in listed[3]] == [fault.id]
    assert listed[0] == ()
    assert listed[1][0].applied == 1
    assert 0 < (listed[1][0].remaining_s or 0) <= 60

    assert clean.remove(fault.id, "1") == 1
    assert clean.remove(fault.id) == 1  # shard 3 still held it; the others did not
    clean.inject([0, 2], "error", status=503)
    clean.inject(3, "reset", probability=0.5)
    assert clean.clear() == 3
    assert all(faults == () for faults in clean.faults().values())


def test_what_each_shard_received_and_decided_is_read_back(clean: Fleet) -> None:
    for number in range(3):
        _data(clean, 2, f"request-{number}")
    received = clean.received("2-3")
    assert received[2].calls == 3
    assert received[2].request_ids == ("request-0", "request-1", "request-2")
    assert received[3].calls == 0
    decided = [d for d in clean.decisions() if d.request_id == "request-1"]
    assert [(d.shard, d.attempt, d.delay_ms, d.faults) for d in decided] == [(2, 0, 5.0, ())]
    clean.forget_received(2)
    assert clean.received(2)[2].calls == 0


def test_latency_and_capacity_are_set_and_reset_restores_what_was_found(clean: Fleet) -> None:
    clean.set_latency("0-1", "fixed:40")
    clean.set_capacity(3, "workers=1,queue=2,overflow=429")
    clean.inject("all", "error", status=500, probability=0.0)
    _data(clean, 0, "x")
    assert _admin(clean, 1, "/admin/latency")["spec"] == "fixed:ms=40"
    assert _admin(clean, 3, "/admin/capacity")["spec"].startswith("workers=1,queue=2,overflow=429")

    clean.reset()
    assert [_admin(clean, shard, "/admin/latency")["spec"] for shard in range(SHARDS)] == [
        "fixed:ms=5"
    ] * SHARDS
    assert _admin(clean, 3, "/admin/capacity")["capacity"] is None
    assert all(faults == () for faults in clean.faults().values())
    assert clean.received(0)[0].calls == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda f: f.inject("all", "slowness"), "kind"),
        (lambda f: f.inject("all", "error", stauts=500), "stauts"),
        (lambda f: f.inject("all", "error", status=99), "status"),
        (lambda f: f.inject("9", "error"), "selector"),
        (lambda f: f.inject("zone:z7", "error"), "selector"),
        (lambda f: f.inject({"random": 0}, "error"), "selector.random"),
        (lambda f: f.inject("0-1", "error", k_of_n=3), "k_of_n"),
        (lambda f: f.set_latency("all", "fixed:-1"), "latency.ms"),
        (lambda f: f.set_latency("all", {"model": "gamma"}), "latency.model"),
        (lambda f: f.set_capacity("all", "workers=0"), "capacity.workers"),
        (lambda f: f.remove("a/b"), "fault_id"),
        (lambda f: f.remove("x y"), "fault_id"),
    ],
)
def test_bad_input_raises_naming_the_field_before_any_shard_is_asked(
    clean: Fleet, call: Any, field: str
) -> None:
    before = _admin_requests(clean)
    with pytest.raises(InvalidRequest) as raised:
        call(clean)
    assert raised.value.errors[0].field == field
    # No admin call but the count's own scrape.
    assert _admin_requests(clean) == [count + 1 for count in before]


def _admin_requests(fleet: Fleet) -> list[float]:
    counts = []
    for shard in fleet.shards:
        text = httpx.get(f"{shard.admin_url}/metrics").text
        [line] = [row for row in text.splitlines() if row.startswith("shard_admin_requests_total")]
        counts.append(float(line.split()[-1]))
    return counts


def test_what_only_a_shard_can_check_comes_back_as_its_422(clean: Fleet) -> None:
    with pytest.raises(InvalidRequest) as raised:
        clean.set_latency(0, "empirical:/etc/passwd")
    assert raised.value.errors[0].field == "latency.path"
    assert "outside the latency directory" in str(raised.value)
    assert _admin(clean, 0, "/admin/latency")["spec"] == "fixed:ms=5"


def test_an_attached_fleet_controls_the_same_shards(fleet: Fleet) -> None:
    attached = Fleet.attach(fleet.urls, fleet.token, zones=[s.zone for s in fleet.shards])
    attached.start()  # attached: nothing to start
    try:
        added = attached.inject("zone:z0", "error", status=502)
        assert [active.id for active in fleet.faults(2)[2]] == [added.id]
    finally:
        attached.reset()
    attached.stop()  # attached: nothing stopped
    assert httpx.get(f"{fleet.urls[0]}/healthz").status_code == 200

    stranger = Fleet.attach(fleet.urls, "not-the-token-0123456789")
    with pytest.raises(Unauthorised, match="shard 0 refused the admin token"):
        stranger.faults()


def test_the_async_fleet_starts_controls_and_stops_its_shards() -> None:
    async def scenario() -> list[str]:
        async with AsyncFleet(2, latency="fixed:1") as fleet:
            added = await fleet.inject("all", "error", status=503)
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"{fleet.urls[1]}/data")
            assert answer.status_code == 503
            assert (await fleet.received(1))[1].calls == 1
            assert [a.id for a in (await fleet.faults())[0]] == [added.id]
            await fleet.reset()
            assert await fleet.faults() == {0: (), 1: ()}
            return fleet.urls

    urls = asyncio.run(scenario())
    ports = [int(url.rsplit(":", 1)[1]) for url in urls]
    assert all(is_free(HOST, port) and is_free(HOST, port + ADMIN_PORT_OFFSET) for port in ports)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"shards": 0}, "shards"),
        ({"shards": ADMIN_PORT_OFFSET + 1}, "shards"),
        ({"latency": "lognormal:50,5"}, "latency.p99_ms"),
        ({"capacity": "workers=2,overflow=teapot"}, "capacity.overflow"),
        ({"shards": 3, "zones": 4}, "zones"),
        ({"shards": 3, "base_port": 65534}, "base_port"),
        ({"shards": 3, "shards_per_process": 4}, "shards_per_process"),
    ],
)
def test_a_fleet_that_cannot_be_is_refused_before_any_process_starts(
    settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        Fleet(**settings)
    assert raised.value.errors[0].field == field


def test_a_fleet_whose_shard_cannot_start_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    base = free_port_block(3, also_at=ADMIN_PORT_OFFSET)
    with socket.socket() as taken:
        taken.bind((HOST, base + 2))
        taken.listen()
        fleet = Fleet(3, base_port=base)
        with pytest.raises(FleetStartError, match=f"port {base + 2} .* is not free"):
            fleet.start()
    assert fleet.log_dir is not None
    assert (fleet.log_dir / "launcher.log").exists()
    ports = [base + n + offset for n in range(3) for offset in (0, ADMIN_PORT_OFFSET)]
    assert all(is_free(HOST, port) for port in ports)
    with pytest.raises(ShardUnreachable):
        Fleet.attach([f"http://{HOST}:{base}"], "no-such-fleet-token-0123").faults()


def test_a_killed_test_process_leaves_no_shard_behind(tmp_path: Path) -> None:
    described = tmp_path / "urls.json"
    script = (
        "import json, sys, time\n"
        "from shardstack.testing import Fleet\n"
        "fleet = Fleet(2)\n"
        "fleet.start()\n"
        f"open({str(described)!r}, 'w').write(json.dumps(fleet.urls))\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_until(lambda: described.exists() and described.read_text() != "", 60, "the fleet")
        urls = json.loads(described.read_text())
        pids = [httpx.get(f"{url}/healthz").json()["pid"] for url in urls]
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        wait_until(lambda: not any(_alive(pid) for pid in pids), 30, "the shards to exit")
    finally:
        holder.kill()
        holder.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; its parent, the launcher, may not have reaped it yet.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.parametrize(
    ("urls", "settings", "field"),
    [
        ([], {}, "urls"),
        (["http://127.0.0.1"], {}, "urls"),
        (["http://127.0.0.1:9000"], {"admin_urls": []}, "admin_urls"),
        (["http://127.0.0.1:9000"], {"zones": ["z0", "z1"]}, "zones"),
    ],
)
def test_attaching_to_what_is_not_a_fleet_is_refused_naming_the_parameter(
    urls: list[str], settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        Fleet.attach(urls, "any-token-0123456789", **settings)
    assert raised.value.errors[0].field == field


def test_a_fleet_not_started_says_so_and_a_missing_fleet_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="not running: use it in a `with` block"):
        _ = Fleet(2).urls
    with pytest.raises(FleetError, match=f"cannot read the fleet file {tmp_path}/none.json"):
        Fleet.attach_file(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(FleetError, match="is not a fleet file"):
        Fleet.attach_file(tmp_path / "bad.json")
