"""The commands in process, through the same entry point a user's shell reaches: what
they print, and the one-line errors, for what needs no stack running."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardstack.cli import main
from shardstack_kernel.faults import COMMON_FIELDS, FAULT_KINDS

ROOT = Path(__file__).parents[2]


def _run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["shardstack", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_fault_kinds_lists_every_kind_in_the_table_with_its_parameters(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(monkeypatch, capsys, "fault", "kinds")
    assert code == 0
    for name, kind in FAULT_KINDS.items():
        assert f"{name}:" in out
        for field in set(kind.model_fields) - COMMON_FIELDS:
            assert f"    {field}  " in out, (name, field)
    assert "period_s and on_s" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "--compare"], "bench --compare is now `shardstack bench compare`"),
        (["bench", "run", "--rounds", "2"], "No such option '--rounds'"),
        (["fault", "inject", "3", "nope"], "kind: 'nope' is not a fault kind"),
        (
            ["fault", "inject", "3", "flap", "period_s=10", 'fault={"kind":"down"}'],
            "`down period_s=10`",
        ),
        (["fault", "inject", "3", "error", "on_s=2"], "on_s: needs period_s"),
        (["fault", "inject", "3", "error", "--for", "soon"], "--for: 'soon' is not a duration"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code, out, err = _run(monkeypatch, capsys, *args)
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith("shardstack: ")
    assert message in line
    assert out == ""


def test_scenario_check_plans_a_file_offline_without_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ROOT / "scenarios" / "flapping-shard.yaml"
    code, out, err = _run(monkeypatch, capsys, "scenario", "check", str(path), "--shards", "20")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "flapping shard: seed 7, 20 shards"
    assert "flapping-shard-1: down period_s=10 on_s=3 on shards 7 for 1m" in out
