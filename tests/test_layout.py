"""The contributing page's Layout section names every module of the tree, so a newcomer
can find the file for any behaviour from it alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]
FOLDERS = ("shardstack_kernel", "gateway", "shard_sim", "shardstack", "benchmarks", "deploy")


def test_the_layout_names_every_module() -> None:
    page = (ROOT / "docs" / "contributing.md").read_text()
    layout = page.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *FOLDERS],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    modules = [
        Path(path)
        for path in tracked
        if (path.endswith(".py") and not path.endswith("__init__.py"))
        or Path(path).parent.name == "deploy"
    ]
    assert modules
    missing = [str(path) for path in modules if path.name not in layout]
    assert not missing, f"not in docs/contributing.md's Layout: {missing}"
