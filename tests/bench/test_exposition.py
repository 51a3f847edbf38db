"""The one reader of a /metrics scrape: samples by name and labels, summed as asked."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from shardstack.bench.exposition import Samples


def _scrape() -> Samples:
    registry = CollectorRegistry()
    calls = Counter("calls", "calls by shard and outcome", ["shard", "outcome"], registry=registry)
    calls.labels("0", "ok").inc(3)
    calls.labels("1", "ok").inc(4)
    calls.labels("1", "timeout").inc(2)
    Gauge("in_use", "permits held", registry=registry).set(5)
    Counter("never", "labelled, no child yet", ["shard"], registry=registry)
    return Samples.parse(generate_latest(registry).decode())


def test_a_series_is_read_by_its_name_and_exact_labels() -> None:
    samples = _scrape()
    assert samples.get("in_use") == 5
    assert samples.get("calls_total", shard="1", outcome="timeout") == 2
    with pytest.raises(KeyError):
        samples.get("calls_total", shard="1")  # not a series: the labels are partial


def test_totals_sum_every_series_whose_labels_include_those_asked() -> None:
    samples = _scrape()
    assert samples.total("calls_total") == 9
    assert samples.total("calls_total", outcome="ok") == 7
    assert samples.total("calls_total", shard="2") == 0
    assert samples.by_label("calls_total", "outcome") == {"ok": 7, "timeout": 2}
    assert samples.by_label("calls_total", "shard") == {"0": 3, "1": 6}


def test_a_metric_is_exported_once_it_has_a_sample() -> None:
    samples = _scrape()
    assert samples.exported("in_use")
    assert samples.exported("calls_total")
    assert not samples.exported("never_total")  # labelled, and no series made yet
    assert not samples.exported("calls")  # the family's name is not a sample's
