"""Both services against real shards: one shard slowed to a second, the answer due
within the deadline with the other shards' results. The seed's service fails it."""

from __future__ import annotations

import time

import deadline_service
import pytest
import seed_service
from fastapi.testclient import TestClient

from shardstack.testing import Fleet

SERVICES = {"seed": seed_service.create_app, "deadline": deadline_service.create_app}


@pytest.mark.shards(count=5, latency="fixed:10")
@pytest.mark.parametrize("service", SERVICES)
def test_one_slow_shard_costs_its_part_not_the_deadline(shard_fleet: Fleet, service: str) -> None:
    shard_fleet.inject(3, "latency", latency="fixed:1000")
    with TestClient(SERVICES[service](shard_fleet.urls)) as client:
        started = time.monotonic()
        answer = client.get("/search")
        took_s = time.monotonic() - started

    assert took_s < 0.75, f"answered after {took_s:.2f}s"
    assert answer.status_code == 200
    assert answer.json()["missing"] == [3]
    assert len(answer.json()["results"]) == 4


@pytest.mark.shards(count=5, latency="fixed:10")
@pytest.mark.parametrize("service", SERVICES)
def test_every_shard_is_asked_once(shard_fleet: Fleet, service: str) -> None:
    with TestClient(SERVICES[service](shard_fleet.urls)) as client:
        answer = client.get("/search")

    assert len(answer.json()["results"]) == 5
    assert [received.calls for received in shard_fleet.received().values()] == [1] * 5
