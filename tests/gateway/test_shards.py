"""The `shards` selector grammar, zones included, the pattern the API document gives for
it, and k_of_n faults told their selection."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from gateway.shards import (
    MAX_SELECTOR_CHARS,
    Shard,
    select,
    selector_pattern,
    shard_table,
    with_selection,
)
from shardstack_kernel.faults import parse_fault
from shardstack_kernel.topology import striped_zones
from shardstack_kernel.validation import InvalidInput

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
        ("6-4,9-8", [4, 5, 6, 8, 9]),
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
        ("a,b", "not a shard id"),
        ("", "not a shard id"),
        ("1,,2", "not a shard id"),
        ("05", "not a shard id"),
        ("+5", "not a shard id"),
        ("5\t", "not a shard id"),
        ("\u0665", "not a shard id"),  # a digit int() would read
        (",".join(["1"] * 2049), "longer than 4096 characters"),
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


ZONED = shard_table([f"http://127.0.0.1:{9000 + i}" for i in range(10)], zones=striped_zones(10, 3))


@pytest.mark.parametrize(
    ("selector", "ids"),
    [
        ("zone:z1", [1, 4, 7]),
        ("zone:z0,zone:z2", [0, 2, 3, 5, 6, 8, 9]),
        ("zone:z2, 0", [0, 2, 5, 8]),
    ],
)
def test_zone_selectors_name_the_zones_shards(selector: str, ids: list[int]) -> None:
    assert [shard.id for shard in select(ZONED, selector)] == ids


@pytest.mark.parametrize(
    ("shards", "selector", "reason"),
    [
        (ZONED, "zone:z9", "no zone 'z9'; zones are z0, z1, z2"),
        (ZONED, "zone:", "no zone ''"),
        (SHARDS, "zone:z1", "this stack has no zones"),
    ],
)
def test_unknown_zones_are_refused(shards: tuple[Shard, ...], selector: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        select(shards, selector)
    [error] = refused.value.errors
    assert error.field == "shards", error
    assert reason in error.reason, error


def test_a_k_of_n_fault_learns_its_selection_and_k_past_it_is_refused() -> None:
    targets = select(ZONED, "zone:z1")
    fault = with_selection(parse_fault({"kind": "error", "k_of_n": 2}), targets)
    assert fault.selection == (1, 4, 7)
    with pytest.raises(InvalidInput, match="k_of_n: 4 is more than the 3 selected shards"):
        with_selection(parse_fault({"kind": "error", "k_of_n": 4}), targets)
    plain = parse_fault({"kind": "error"})
    assert with_selection(plain, targets) is plain


@pytest.mark.parametrize(
    ("zones", "reason"),
    [
        ("z0,z1", "2 zones for 3 shard URLs"),
        ("z0,z1,bad zone", "entry 2 ('bad zone') is not a zone name"),
        ("z0,,z1", "entry 1 ('') is not a zone name"),
    ],
)
def test_bad_gateway_zones_are_named(zones: str, reason: str) -> None:
    urls = ",".join(f"http://127.0.0.1:{9000 + i}" for i in range(3))
    with pytest.raises(ValidationError) as refused:
        GatewaySettings(shard_urls=urls, shard_zones=zones)
    assert reason in str(refused.value)


def _accepts(shards: tuple[Shard, ...], selector: str) -> bool:
    try:
        select(shards, selector)
    except InvalidInput:
        return False
    return True


SELECTOR_TEXT = st.text(st.sampled_from("0123456789,- :zoneal"), max_size=14)


@settings(max_examples=400)
@given(data=st.data())
def test_the_selector_pattern_is_the_grammar_select_takes(data: st.DataObject) -> None:
    """What the document's pattern and length admit, `select` takes, and what they
    refuse, `select` refuses."""
    shards = data.draw(st.sampled_from([SHARDS, ZONED]))
    pattern = selector_pattern(shards)
    drawn = data.draw(st.from_regex(pattern, fullmatch=True) | SELECTOR_TEXT)
    admitted = re.fullmatch(pattern, drawn) is not None and len(drawn) <= MAX_SELECTOR_CHARS
    assert _accepts(shards, drawn) is admitted, drawn
