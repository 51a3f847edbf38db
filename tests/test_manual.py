"""The manual: a short README, and a site built strictly whose reference pages hold every
setting, metric, recording rule, fault kind, command and API operation the code declares,
because they are generated from it at build time."""

from __future__ import annotations

import dataclasses
import html
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

from gateway.app import create_app
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from shard_sim.metrics import ShardMetrics
from shard_sim.settings import ShardSettings
from shardstack import testing
from shardstack.cli import cli
from shardstack.launcher.prometheus import RULES_FILE
from shardstack_kernel.faults import FAULT_KINDS

ROOT = Path(__file__).parents[1]
README_LIMIT = 10 * 1024


def _build(source: Path, site: Path, **env: str) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=source, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **env},
    )  # fmt: skip
    assert built.returncode == 0, built.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("site")
    _build(ROOT, built)
    return built


def _page(site: Path, name: str) -> str:
    return html.unescape((site / name / "index.html").read_text())


def _env_names(model: type[GatewaySettings] | type[ShardSettings], prefix: str) -> list[str]:
    return [
        field.validation_alias
        if isinstance(field.validation_alias, str)
        else f"{prefix}{name.upper()}"
        for name, field in model.model_fields.items()
    ]


def test_the_readme_is_short_and_links_into_the_manual() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= README_LIMIT
    for page in ("docs/quickstart.md", "docs/reference/settings.md", "docs/contributing.md"):
        assert f"]({page})" in readme
        assert (ROOT / page).is_file()


def test_every_setting_is_on_the_settings_page(site: Path) -> None:
    page = _page(site, "reference/settings")
    names = _env_names(GatewaySettings, "GATEWAY_") + _env_names(ShardSettings, "SHARD_")
    missing = [name for name in names if f"<code>{name}</code>" not in page]
    assert not missing
    assert "<!-- reference:" not in page


def test_every_metric_and_rule_is_on_the_metrics_page(site: Path) -> None:
    page = _page(site, "reference/metrics")
    families = [
        *GatewayMetrics([0], {0: "z0"}).registry.collect(),
        *ShardMetrics(shard_id=0, zone="z0").registry.collect(),
    ]
    names = [f"{f.name}_total" if f.type == "counter" else f.name for f in families]
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    names += [rule["record"] for group in groups for rule in group["rules"]]
    assert len(names) > 40
    assert [name for name in names if f"<code>{name}</code>" not in page] == []


def test_every_fault_kind_and_its_fields_are_on_the_faults_page(site: Path) -> None:
    page = _page(site, "reference/faults")
    for name, kind in FAULT_KINDS.items():
        assert f'<h3 id="{name}"><code>{name}</code>' in page, name
        seen_as = re.sub(r"`([^`]*)`", r"<code>\1</code>", kind.seen_as)
        assert f"The gateway sees:</strong> {seen_as}" in page, name
        for field in kind.model_fields:
            if field != "kind":
                assert f"<code>{field}</code>" in page, (name, field)


def test_every_command_and_option_is_on_the_cli_page(site: Path) -> None:
    page = _page(site, "reference/cli")

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):  # the top group loads its commands lazily
            context = click.Context(command)
            for name in command.list_commands(context):
                child = command.get_command(context, name)
                assert child is not None, name
                yield from walk(child, f"{path} {name}")

    commands = list(walk(cli, "shardstack"))
    assert len(commands) > 15
    for path, command in commands:
        assert f">{path}" in page, path
        for parameter in command.params:
            for flag in getattr(parameter, "opts", []):
                if flag.startswith("-"):
                    assert flag in page, (path, flag)


def test_every_gateway_operation_is_on_the_api_page(site: Path) -> None:
    page = _page(site, "reference/api")
    settings = GatewaySettings(admin_token="test-the-manual-token")  # type: ignore[arg-type]
    document = create_app(settings).openapi()
    operations = [
        f"{method.upper()} {path}"
        for path, methods in document["paths"].items()
        for method in methods
    ]
    assert len(operations) > 5
    assert [op for op in operations if f"<code>{op}</code>" not in page] == []


def test_a_setting_added_in_code_is_on_the_next_build(tmp_path: Path) -> None:
    """The packages, the pages and mkdocs.yml copied, a field added to the gateway's
    settings in the copy: the copy's build lists it, with no page edited."""
    for name in ("gateway", "shard_sim", "shardstack", "docs"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    settings = tmp_path / "gateway" / "settings.py"
    source = settings.read_text()
    anchor = "    bind: str = Field("
    assert anchor in source
    added = (
        "    added_in_a_copy_ms: int = Field(\n"
        '        7, ge=3, le=11, description="a setting this build alone has"\n'
        "    )\n"
    )
    settings.write_text(source.replace(anchor, added + anchor, 1))
    _build(tmp_path, tmp_path / "site", PYTHONPATH=str(tmp_path))
    page = _page(tmp_path / "site", "reference/settings")
    row = page.split("<code>GATEWAY_ADDED_IN_A_COPY_MS</code>", 1)[1].split("</tr>", 1)[0]
    assert "<code>7</code>" in row
    assert "≥ 3, ≤ 11" in row
    assert "a setting this build alone has" in row


def test_the_testing_api_page_holds_every_public_name_method_and_field(site: Path) -> None:
    ids = set(re.findall(r'id="(shardstack\.testing\.[^"]+)"', _page(site, "reference/testing")))
    for name in testing.__all__:
        module = getattr(getattr(testing, name), "__module__", "").rpartition(".")[2]
        assert {f"shardstack.testing.{name}", f"shardstack.testing.{module}.{name}"} & ids, name
    public = [
        name for cls in testing.Fleet.__mro__[:2] for name in vars(cls) if not name.startswith("_")
    ]
    assert len(public) > 15
    assert [name for name in public if f"shardstack.testing.Fleet.{name}" not in ids] == []
    fields = [
        f"shardstack.testing.results.{result.__name__}.{field.name}"
        for result in (testing.InjectedFault, testing.Received, testing.Decision)
        for field in dataclasses.fields(result)
    ]
    assert [field for field in fields if field not in ids] == []
    assert "shardstack.testing.pytest_plugin.shard_fleet" in ids
