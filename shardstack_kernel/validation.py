"""Bad input as a type: a list of field errors, whatever layer found them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError, ValidationInfo, field_validator

_NAMED_REASON = re.compile(r"^(?P<field>[A-Za-z_][\w.]*): (?P<reason>.+)$", re.DOTALL)
# Location parts that name where a value came from, not which field it is.
_SOURCE_PARTS = frozenset({"query", "body", "path", "header"})


@dataclass(frozen=True, slots=True)
class FieldError:
    """One rejected field and why, in words a user can act on."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class InvalidInput(ValueError):
    """Input refused before it changed anything; carries every field at fault."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(str(error) for error in self.errors))

    @classmethod
    def field(cls, field: str, reason: str) -> InvalidInput:
        return cls([FieldError(field, reason)])

    @classmethod
    def from_pydantic(cls, exc: ValidationError) -> InvalidInput:
        return cls(field_errors(exc.errors(include_url=False)))

    @classmethod
    def from_settings(cls, exc: ValidationError, env_prefix: str) -> InvalidInput:
        """Name each field by the environment variable that sets it (`SHARD_LATENCY`)."""
        errors = field_errors(exc.errors(include_url=False))
        return cls(
            FieldError(
                _env_name(error.field, env_prefix),
                ": ".join(part for part in (error.field.partition(".")[2], error.reason) if part),
            )
            for error in errors
        )


class Conflict(Exception):
    """Valid input that clashes with what is already there (a fault id in use): 409."""


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """Translate pydantic error dicts into `FieldError`s named by their dotted location."""
    result = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if len(loc) > 1 and loc[0] in _SOURCE_PARTS:
            loc = loc[1:]
        message = str(error.get("msg", "invalid value"))
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        # A model-level or nested check names its field as "field: reason".
        named = _NAMED_REASON.match(message)
        if named:
            loc, message = [*loc, named["field"]], named["reason"]
        result.append(FieldError(".".join(loc), message))
    return result


def _env_name(field: str, env_prefix: str) -> str:
    name = field.split(".")[0]
    if not name:
        return ""
    # Fields read from an unprefixed variable (an alias such as SHARDSTACK_ADMIN_TOKEN).
    return name if name.isupper() else f"{env_prefix}{name}".upper()


def not_below(field: str, other: str) -> Any:
    """A pydantic validator refusing `field` < `other` (declared earlier), reported at `field`."""

    def check(value: float, info: ValidationInfo) -> float:
        bound = info.data.get(other)
        if bound is not None and value < bound:
            raise ValueError(f"must be greater than or equal to {other} ({bound:g})")
        return value

    return field_validator(field)(check)
