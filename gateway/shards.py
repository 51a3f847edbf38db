"""The shard table and the shard selectors: `all`, ids and ranges like `0,3,5-7`, zones
(`zone:z1`, mixed freely with ids: `zone:z1,7`), a list of ids, or `{"random": k}` for k
shards picked at random."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from shardstack_kernel.faults import Fault
from shardstack_kernel.topology import ADMIN_PORT_OFFSET
from shardstack_kernel.validation import InvalidInput


@dataclass(frozen=True, slots=True)
class Shard:
    id: int
    base_url: str
    data_url: str
    health_url: str
    admin_url: str
    zone: str | None = None

    @classmethod
    def at(
        cls, shard_id: int, base_url: str, admin_port_offset: int, zone: str | None = None
    ) -> Shard:
        return cls(
            shard_id,
            base_url,
            f"{base_url}/data",
            f"{base_url}/healthz",
            with_port_offset(base_url, admin_port_offset),
            zone,
        )


def shard_table(
    urls: Sequence[str],
    admin_port_offset: int = ADMIN_PORT_OFFSET,
    zones: Sequence[str] | None = None,
) -> tuple[Shard, ...]:
    return tuple(
        Shard.at(index, url, admin_port_offset, None if zones is None else zones[index])
        for index, url in enumerate(urls)
    )


def zones_of(shards: Sequence[Shard]) -> tuple[str | None, ...] | None:
    """Each shard's zone, in id order; None when no shard has one."""
    zones = tuple(shard.zone for shard in shards)
    return zones if any(zone is not None for zone in zones) else None


def with_port_offset(url: str, offset: int) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit(parts._replace(netloc=f"{host}:{port + offset}"))


def select(shards: Sequence[Shard], selector: str | None, field: str = "shards") -> list[Shard]:
    """The shards a selector names, in id order; `InvalidInput` naming `field` if it is bad."""
    zones = zones_of(shards)
    return [shards[index] for index in selected_ids(len(shards), selector, field, zones)]


def select_any(shards: Sequence[Shard], selector: object, field: str = "shards") -> list[Shard]:
    """As `select`, for any selector JSON allows (see `selected_ids_any`)."""
    zones = zones_of(shards)
    return [shards[index] for index in selected_ids_any(len(shards), selector, field, zones=zones)]


Zones = Sequence[str | None] | None
# A selector longer than this is refused before it is read.
MAX_SELECTOR_CHARS = 4096


def selected_ids(
    count: int, selector: str | None, field: str = "shards", zones: Zones = None
) -> list[int]:
    """The ids `all`, `0,3,5-7` (or `7-5`) or `zone:z1` names among `count` shards (whose zones, by
    id, are `zones`), in order. Spaces may stand around each part and dash."""
    if selector is None or selector.strip(" ") == "all":
        return list(range(count))
    if len(selector) > MAX_SELECTOR_CHARS:
        raise InvalidInput.field(field, f"longer than {MAX_SELECTOR_CHARS} characters")
    chosen: set[int] = set()
    for part in selector.split(","):
        text = part.strip(" ")
        if text.startswith("zone:"):
            chosen.update(_in_zone(text.removeprefix("zone:"), zones, field))
            continue
        match = _ID_OR_RANGE.fullmatch(text)
        if match is None:
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise InvalidInput.field(
                field, f"{shown!r} is not a shard id or range; use e.g. 'all' or '0,3,5-7'"
            )
        # A range names the shards between its ends, written either way round.
        first, last = sorted((int(match["first"]), int(match["last"] or match["first"])))
        if last >= count:
            raise InvalidInput.field(field, f"{text!r} is outside the shard ids 0-{count - 1}")
        chosen.update(range(first, last + 1))
    return sorted(chosen)


# At most 9 digits: an id no table reaches, and never a number too long to read.
_ID = "0|[1-9][0-9]{0,8}"
_ID_OR_RANGE = re.compile(f"(?P<first>{_ID})(?: *- *(?P<last>{_ID}))?")


def selector_pattern(shards: Sequence[Shard]) -> str:
    """The regular expression of exactly the selectors `select` takes for this table, for
    the API's document: ids below the shard count (listed: 4 KB of pattern per thousand
    shards, where a compiled digit-range expression would save that at the cost of code
    of its own), ranges either way round, this table's zones."""
    shard_id = "(?:" + "|".join(str(index) for index in range(len(shards) - 1, -1, -1)) + ")"
    items = [f"{shard_id}(?: *- *{shard_id})?"]
    zones = sorted({shard.zone for shard in shards if shard.zone is not None})
    if zones:
        items.append("zone:(?:" + "|".join(re.escape(zone) for zone in zones) + ")")
    item = "(?:" + "|".join(items) + ")"
    return f"^ *(?:all|{item}(?: *, *{item})*) *$"


def _in_zone(name: str, zones: Zones, field: str) -> list[int]:
    if zones is None:
        raise InvalidInput.field(
            field, f"zone:{name}: this stack has no zones (GATEWAY_SHARD_ZONES, up --zones)"
        )
    members = [index for index, zone in enumerate(zones) if zone == name]
    if not members:
        known = ", ".join(sorted({zone for zone in zones if zone is not None}))
        raise InvalidInput.field(field, f"no zone {name!r}; zones are {known}")
    return members


def selected_ids_any(
    count: int,
    selector: object,
    field: str = "shards",
    rng: random.Random | None = None,
    zones: Zones = None,
) -> list[int]:
    """The string forms, a list of ids, or `{"random": k}` (with `"seed"` for a repeatable
    pick, or drawn from `rng`)."""
    if selector is None or isinstance(selector, str):
        return selected_ids(count, selector, field, zones)
    if isinstance(selector, list):
        if not selector or not all(type(item) is int for item in selector):
            raise InvalidInput.field(field, "a list of shard ids must hold integers, at least one")
        return selected_ids(count, ",".join(str(item) for item in selector), field)
    if isinstance(selector, Mapping):
        return _random(count, selector, field, rng)
    raise InvalidInput.field(field, "use 'all', '0,3,5-7', a list of ids, or {\"random\": k}")


def _random(
    count: int, selector: Mapping[str, object], field: str, rng: random.Random | None
) -> list[int]:
    unknown = set(selector) - {"random", "seed"}
    if unknown:
        raise InvalidInput.field(field, f"unknown key(s) {', '.join(sorted(unknown))}")
    k, seed = selector.get("random"), selector.get("seed")
    if type(k) is not int or not 1 <= k <= count:
        raise InvalidInput.field(f"{field}.random", f"must be an integer from 1 to {count}")
    if seed is not None and not (type(seed) is int and -(2**63) <= seed < 2**63):
        raise InvalidInput.field(f"{field}.seed", "must be a 64-bit signed integer")
    if seed is not None or rng is None:
        rng = random.Random(seed)
    return sorted(rng.sample(range(count), k))


class Identified(Protocol):
    """Anything naming a shard by its id: this table's `Shard`, a test fleet's."""

    @property
    def id(self) -> int: ...


def with_selection(fault: Fault, targets: Sequence[Identified], field: str = "k_of_n") -> Fault:
    """A `k_of_n` fault told which shards it picks from: the ones it is sent to."""
    if fault.k_of_n is None:
        return fault
    if fault.k_of_n > len(targets):
        written = "" if field == "k_of_n" else "k_of_n "
        raise InvalidInput.field(
            field, f"{written}{fault.k_of_n} is more than the {len(targets)} selected shards"
        )
    return fault.model_copy(update={"selection": tuple(shard.id for shard in targets)})
