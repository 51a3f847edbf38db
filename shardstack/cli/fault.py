"""`shardstack fault ...`: inject, list, remove and clear faults through the gateway."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from shardstack.cli.connection import connect, gateway_option, token_option
from shardstack_kernel.durations import format_duration, parse_duration
from shardstack_kernel.faults import COMMON_FIELDS, FAULT_KINDS, parse_fault, parse_fault_words
from shardstack_kernel.validation import InvalidInput


@click.group(
    help=f"""Break shards on purpose: inject, list, remove and clear faults.

\b
Kinds: {", ".join(FAULT_KINDS)} (`shardstack fault kinds` lists their parameters);
any of them flaps with period_s=S [on_s=S].
SELECTOR: all, 3, 0,3,5-7, zone:NAME, or random:K for K shards picked at random.
"""
)
def fault() -> None:
    pass


@fault.command()
@click.argument("selector")
@click.argument("kind")
@click.argument("params", nargs=-1)
@click.option("--probability", "-p", type=float, default=None, help="Chance per request, 0..1.")
@click.option("--for", "for_", default=None, help="Remove it after this long: 30s, 2m, 500ms.")
@click.option("--id", "fault_id", default=None, help="Name it (default: KIND-xxxxxx).")
@gateway_option
@token_option
def inject(
    selector: str,
    kind: str,
    params: tuple[str, ...],
    probability: float | None,
    for_: str | None,
    fault_id: str | None,
    gateway: str,
    token: str | None,
) -> None:
    """Inject a fault of KIND on the shards SELECTOR names.

    \b
    PARAMS are key=value, e.g.
      shardstack fault inject 3 latency latency=lognormal:5,80 --for 30s
      shardstack fault inject 0-4 error status=503 retry_after_s=2 -p 0.2
      shardstack fault inject random:5 down period_s=10 on_s=3
    """
    words = [kind, *params]
    if probability is not None:
        words.append(f"probability={probability}")
    if for_ is not None:
        words.append(f"duration_s={parse_duration(for_, '--for')}")
    if fault_id is not None:
        words.append(f"id={fault_id}")
    spec = parse_fault_words(words).compact()
    spec["shards"] = _selector(selector)
    with connect(gateway, token) as client:
        _, body = client.request("POST", "/admin/faults", json=spec, accept=(409,))
    shards = body["shards"]
    added = [entry["shard"] for entry in shards if entry["status"] == "added"]
    lasting = f" for {format_duration(spec['duration_s'])}" if "duration_s" in spec else ""
    click.echo(f"injected {body['id']} ({kind}) on shards {_ids(added)}{lasting}")
    _report_failures(shards)


@fault.command(name="list")
@click.option("--shards", "selector", default="all", show_default=True, help="Shards to ask.")
@click.option("--json", "as_json", is_flag=True, help="Print the gateway's JSON answer.")
@gateway_option
@token_option
def list_faults(selector: str, as_json: bool, gateway: str, token: str | None) -> None:
    """List the active faults, shard by shard."""
    with connect(gateway, token) as client:
        _, body = client.request("GET", "/admin/faults", params={"shards": selector})
    if as_json:
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_table(body["shards"])
    _report_failures(body["shards"])


@fault.command()
@click.argument("selector", default="all")
@gateway_option
@token_option
def clear(selector: str, gateway: str, token: str | None) -> None:
    """Remove every fault from the shards SELECTOR names (default all)."""
    with connect(gateway, token) as client:
        _, body = client.request("DELETE", "/admin/faults", params={"shards": selector})
    click.echo(f"cleared {body['cleared']} faults on {len(body['shards'])} shards")
    _report_failures(body["shards"])


@fault.command()
@click.argument("fault_id")
@gateway_option
@token_option
def remove(fault_id: str, gateway: str, token: str | None) -> None:
    """Remove the fault FAULT_ID from every shard that has it."""
    with connect(gateway, token) as client:
        status, body = client.request("DELETE", f"/admin/faults/{fault_id}", accept=(404,))
    if status == 404:
        raise click.ClickException(f"no shard has a fault {fault_id!r}")
    click.echo(f"removed {fault_id} from shards {_ids(body['removed_from'])}")
    _report_failures(body["failed"])


@fault.command()
def kinds() -> None:
    """The fault kinds and their parameters."""
    for kind in FAULT_KINDS.values():
        summary = " ".join((sys.modules[kind.__module__].__doc__ or "").split())
        click.echo(summary.replace("`", ""))
        for field_name, field in kind.model_fields.items():
            if field_name in COMMON_FIELDS:
                continue
            default = (
                "required"
                if field.is_required()
                else "optional"
                if field.default is None
                else f"default {field.default!r}"
            )
            click.echo(f"    {field_name}  {field.description or ''} ({default})")
    click.echo(
        "every kind: probability (0..1, default 1), duration_s, id; "
        "period_s and on_s (default half the period) switch it on and off; "
        "per-request kinds: k_of_n (exactly K of the selected shards per request) "
        "or correlation (0..1, ties the selected shards' rolls)"
    )


def _selector(text: str) -> Any:
    name, sep, count = text.partition(":")
    if sep and name == "random":
        if not count.isdigit():
            raise InvalidInput.field("SELECTOR", f"{text!r}: write random:K with K a number")
        return {"random": int(count)}
    return text


def _ids(ids: list[int]) -> str:
    return ",".join(str(shard) for shard in ids) or "none"


def _report_failures(entries: list[dict[str, Any]]) -> None:
    failed = [entry for entry in entries if entry.get("status") == "failed"]
    for entry in failed:
        click.echo(f"shard {entry['shard']}: {entry.get('detail', 'failed')}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


def _print_table(shards: list[dict[str, Any]]) -> None:
    rows = []
    for entry in shards:
        for active in entry.get("faults") or []:
            status = {"remaining_s", "on", "applied"}
            spec = {key: value for key, value in active.items() if key not in status}
            params = parse_fault(spec).words().partition(" ")[2]
            left = active["remaining_s"]
            rows.append(
                [
                    str(entry["shard"]),
                    active["id"],
                    active["kind"] + ("" if active["on"] else " (off)"),
                    f"{active['probability']:g}",
                    "-" if left is None else format_duration(left),
                    str(active["applied"]),
                    params,
                ]
            )
    if not rows:
        click.echo("no active faults")
        return
    header = ["SHARD", "ID", "KIND", "PROB", "LEFT", "APPLIED", "PARAMS"]
    widths = [max(len(row[index]) for row in [header, *rows]) for index in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
