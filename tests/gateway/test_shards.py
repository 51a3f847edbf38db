"""The `shards` selector grammar."""

from __future__ import annotations

import pytest

from gateway.shards import select, shard_table
from shardstack.common.validation import InvalidInput

SHARDS = shard_table([f"http://127.0.0.1:{9000 + i}" for i in range(10)])


@pytest.mark.parametrize(
    ("selector", "ids"),
    [
        (None, list(range(10))),
        ("all", list(range(10))),
        ("3", [3]),
        ("5,1,5", [1, 5]),
        ("0-2,8-9", [0, 1, 2, 8, 9]),
        (" 4 - 6 , 9 ", [4, 5, 6, 9]),
    ],
)
def test_selector_names_exactly_these_shards(selector: str | None, ids: list[int]) -> None:
    assert [shard.id for shard in select(SHARDS, selector)] == ids


@pytest.mark.parametrize(
    ("selector", "reason"),
    [
        ("10", "outside the shard ids 0-9"),
        ("-1", "not a shard id"),
        ("8-12", "outside"),
        ("5-2", "runs backwards"),
        ("a,b", "not a shard id"),
        ("", "not a shard id"),
        ("1,,2", "not a shard id"),
    ],
)
def test_bad_selectors_are_refused(selector: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        select(SHARDS, selector)
    assert caught.value.errors[0].field == "shards"
    assert reason in caught.value.errors[0].reason


def test_shard_urls_are_derived_once() -> None:
    assert SHARDS[2].data_url == "http://127.0.0.1:9002/data"
    assert SHARDS[2].health_url == "http://127.0.0.1:9002/healthz"
