"""The shard table and the `shards` selector grammar: `all`, or ids and ranges like `0,3,5-7`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shardstack.validation import InvalidInput


@dataclass(frozen=True, slots=True)
class Shard:
    id: int
    base_url: str
    data_url: str
    health_url: str

    @classmethod
    def at(cls, shard_id: int, base_url: str) -> Shard:
        return cls(shard_id, base_url, f"{base_url}/data", f"{base_url}/healthz")


def shard_table(urls: Sequence[str]) -> tuple[Shard, ...]:
    return tuple(Shard.at(index, url) for index, url in enumerate(urls))


def select(shards: Sequence[Shard], selector: str | None, field: str = "shards") -> list[Shard]:
    """The shards a selector names, in id order; `InvalidInput` naming `field` if it is bad."""
    if selector is None or selector.strip() == "all":
        return list(shards)
    count = len(shards)
    chosen: set[int] = set()
    for part in selector.split(","):
        text = part.strip()
        low, dash, high = text.partition("-")
        try:
            first, last = (int(low), int(high)) if dash else (int(text), int(text))
        except ValueError:
            raise InvalidInput.field(
                field, f"{text!r} is not a shard id or range; use e.g. 'all' or '0,3,5-7'"
            ) from None
        if first > last:
            raise InvalidInput.field(field, f"range {text!r} runs backwards")
        if first < 0 or last >= count:
            raise InvalidInput.field(field, f"{text!r} is outside the shard ids 0-{count - 1}")
        chosen.update(range(first, last + 1))
    return [shards[index] for index in sorted(chosen)]
