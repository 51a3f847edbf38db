"""A fault as an API document states it: one JSON Schema object per kind, told apart by
`kind`, generated from the registry, so a new kind needs no document work."""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from shardstack_kernel.faults.kinds import FAULT_KINDS


def fault_schemas(
    ref_template: str,
    *,
    add: Mapping[str, dict[str, Any]] | None = None,
    drop: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The union of every kind, discriminated by `kind`, and the definitions it refers to
    (one per kind, named as its class), each with the properties `add` (required) and
    without those in `drop`. `kind` is required: it has a default only in Python."""
    union: Any = functools.reduce(operator.or_, FAULT_KINDS.values())
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[union, Field(discriminator="kind")])
    schema = adapter.json_schema(ref_template=ref_template)
    definitions: dict[str, dict[str, Any]] = schema.pop("$defs")
    for kind in FAULT_KINDS.values():
        definition = definitions[kind.__name__]
        properties = definition["properties"]
        for name in drop:
            properties.pop(name, None)
        properties.update(add or {})
        definition["required"] = ["kind", *definition.get("required", ()), *(add or {})]
    return schema, definitions
