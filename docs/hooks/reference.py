"""The reference pages' tables, generated at build time from the code that declares each
fact (mkdocs hook): a page holds `<!-- reference: NAME -->` where a table goes.

Settings from the services' `BaseSettings` models, metrics from the registries the
services build, recording rules from their file, fault kinds from their registry, the
gateway's API from its OpenAPI document. Nothing here is typed by hand, so a setting or a
metric added in code is on the site at the next build.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

# A marker alone on its line, so a page may quote one.
_MARKER = re.compile(r"^<!-- reference: ([a-z-]+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Each marker replaced by its table; an unknown name fails the build."""

    def table(match: re.Match[str]) -> str:
        name = match[1]
        if name not in GENERATORS:
            raise ValueError(f"<!-- reference: {name} -->: no such table ({sorted(GENERATORS)})")
        return GENERATORS[name]()

    return _MARKER.sub(table, markdown)


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _code(value: object) -> str:
    return f"`{value}`"


def _env_name(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    return f"{model.model_config.get('env_prefix', '')}{name}".upper()


def _default(field: FieldInfo, package_root: Path | None) -> str:
    factory = field.default_factory
    value = field.default if factory is None else factory()  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "none"
    spec = getattr(value, "spec", None)
    if callable(spec):
        return _code(spec())
    if isinstance(value, Path) and package_root is not None and value.is_relative_to(package_root):
        return "the package's " + _code(value.relative_to(package_root))
    if isinstance(value, tuple | list):
        if len(value) > 3:
            return f"{len(value)}: {_code(value[0])} .. {_code(value[-1])}"
        return ", ".join(_code(item) for item in value) or "none"
    if isinstance(value, bool):
        return _code(str(value).lower())
    if isinstance(value, Enum):
        return _code(value.value)
    return _code(value)


def _number(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}"
    return f"{int(value):,}".replace(",", "\u202f")  # a narrow space that does not break


def _bounds(field: FieldInfo) -> str:
    words = {
        annotated_types.Ge: ("≥", "ge"),
        annotated_types.Gt: (">", "gt"),
        annotated_types.Le: ("≤", "le"),
        annotated_types.Lt: ("<", "lt"),
    }
    parts: list[str] = []
    for item in [*field.metadata, *_type_constraints(field.annotation)]:
        for kind, (sign, attribute) in words.items():
            if isinstance(item, kind):
                parts.append(f"{sign} {_number(getattr(item, attribute))}")
        if isinstance(item, annotated_types.MinLen) and item.min_length > 1:
            parts.append(f"length ≥ {item.min_length}")
        if isinstance(item, annotated_types.MaxLen):
            parts.append(f"length ≤ {item.max_length}")
    choices = _choices(field.annotation)
    if choices:
        parts.append("one of " + ", ".join(_code(choice) for choice in choices))
    return ", ".join(parts)


def _type_constraints(annotation: Any) -> list[Any]:
    """Constraints declared in the field's type (`Annotated[float, Field(gt=0)] | None`)."""
    found: list[Any] = []
    if get_origin(annotation) is Annotated:
        inner, *extras = get_args(annotation)
        for extra in extras:
            found += extra.metadata if isinstance(extra, FieldInfo) else [extra]
        found += _type_constraints(inner)
    elif get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            found += _type_constraints(arg)
    return found


def _choices(annotation: Any) -> list[str]:
    if get_origin(annotation) is Literal:
        return [str(choice) for choice in get_args(annotation)]
    if get_origin(annotation) in (Union, types.UnionType):
        return [choice for arg in get_args(annotation) for choice in _choices(arg)]
    return []


def fields_table(
    model: type[BaseModel],
    shown: dict[str, str],
    first: str = "field",
    package_root: Path | None = None,
) -> str:
    """One row per field in `shown` (field -> the name it goes by): that name, the
    field's default, bounds and meaning; a default path inside `package_root` as relative."""
    rows = []
    for name, label in shown.items():
        field = model.model_fields[name]
        rows.append(
            [_code(label), _default(field, package_root), _bounds(field), field.description or ""]
        )
    return _table([first, "default", "bounds", "meaning"], rows)


def settings_table(model: type[BaseModel], package_root: Path) -> str:
    """A settings model's fields by the variables that set them."""
    shown = {name: _env_name(model, name, field) for name, field in model.model_fields.items()}
    return fields_table(model, shown, "variable", package_root)


def _gateway_settings() -> str:
    import gateway
    from gateway.settings import GatewaySettings

    return settings_table(GatewaySettings, Path(gateway.__file__).parents[1])


def _shard_settings() -> str:
    import shard_sim
    from shard_sim.settings import ShardSettings

    return settings_table(ShardSettings, Path(shard_sim.__file__).parents[1])


def metrics_table(registry: CollectorRegistry) -> str:
    """One row per metric family a registry exports: its name, type, labels and help."""
    rows = []
    for family in registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        labels = {label for sample in family.samples for label in sample.labels}
        # prometheus-client has no public accessor for a labelled metric's label names
        # before it has a child; its registry maps each name to the metric object.
        collector = registry._names_to_collectors.get(family.name)
        labels |= set(getattr(collector, "_labelnames", ()))
        labels -= {"le", "quantile"}
        rows.append(
            [
                _code(name),
                family.type,
                ", ".join(_code(label) for label in sorted(labels)),
                family.documentation,
            ]
        )
    return _table(["metric", "type", "labels", "meaning"], rows)


def _gateway_metrics() -> str:
    from gateway.metrics import GatewayMetrics

    return metrics_table(GatewayMetrics([0], {0: "z0"}).registry)


def _shard_metrics() -> str:
    from shard_sim.metrics import ShardMetrics

    return metrics_table(ShardMetrics(shard_id=0, zone="z0").registry)


def _recording_rules() -> str:
    from shardstack.launcher.prometheus import RULES_FILE

    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    rows = [
        [_code(rule["record"]), _code(" ".join(rule["expr"].split()))]
        for group in groups
        for rule in group["rules"]
    ]
    return _table(["rule", "expression"], rows)


def _fault_kinds() -> str:
    import importlib

    from shardstack_kernel.faults import FAULT_KINDS
    from shardstack_kernel.faults.kind import COMMON_FIELDS, Fault

    sections = []
    for name, kind in FAULT_KINDS.items():
        module = importlib.import_module(kind.__module__)
        doc = (module.__doc__ or "").strip().removeprefix(f"`{name}`:").strip()
        doc = doc[:1].upper() + doc[1:]
        own = {field: field for field in kind.model_fields if field not in COMMON_FIELDS}
        fields = fields_table(kind, own) if own else "No parameters of its own.\n"
        per_request = "yes" if kind.per_request else "no (it acts on the listener)"
        sections.append(
            f"### `{name}`\n\n{doc}\n\n**The gateway sees:** {kind.seen_as}\n\n"
            f"**In one request's `X-Shardstack-Fault`:** {per_request}\n\n{fields}"
        )
    common = {field: field for field in Fault.model_fields if field in COMMON_FIELDS - {"kind"}}
    return (
        "## Fields every kind has\n\n"
        + fields_table(Fault, common)
        + "\n## The kinds, in the order they act\n\n"
        + "\n".join(sections)
    )


def _gateway_api() -> str:
    from gateway.app import create_app
    from gateway.settings import GatewaySettings

    # A token of its own, so the app makes and prints none.
    settings = GatewaySettings(admin_token="reference-pages-built-with-this")  # type: ignore[arg-type]
    document = create_app(settings).openapi()
    sections = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            parameters = [
                [
                    _code(parameter["name"]),
                    parameter["in"],
                    "yes" if parameter.get("required") else "no",
                    " ".join(
                        (
                            parameter.get("description")
                            or parameter.get("schema", {}).get("description")
                            or ""
                        ).split()
                    ),
                ]
                for parameter in operation.get("parameters", [])
            ]
            answers = ", ".join(
                f"{status} {answer.get('description', '')}".strip()
                for status, answer in operation.get("responses", {}).items()
            )
            body = (operation.get("description") or "").strip()
            section = f"### `{method.upper()} {path}`\n\n{operation.get('summary', '')}\n\n"
            if body:
                section += f"{body}\n\n"
            if parameters:
                section += _table(["parameter", "in", "required", "meaning"], parameters) + "\n"
            section += f"**Answers:** {answers}\n"
            sections.append(section)
    return "\n".join(sections)


GENERATORS: dict[str, Callable[[], str]] = {
    "gateway-settings": _gateway_settings,
    "shard-settings": _shard_settings,
    "gateway-metrics": _gateway_metrics,
    "shard-metrics": _shard_metrics,
    "recording-rules": _recording_rules,
    "fault-kinds": _fault_kinds,
    "gateway-api": _gateway_api,
}
