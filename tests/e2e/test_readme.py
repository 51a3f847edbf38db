"""The README and the manual run as written: the shell commands of the README's session,
the quickstart's and the fault guide's, run in order against a real `shardstack up`,
print what the pages show, in shape (numbers, generated ids and randomly picked shards
aside)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardstack_kernel.topology import ADMIN_PORT_OFFSET
from tests.e2e.stack import RunningStack, StartStack

ROOT = Path(__file__).parents[2]
# Each page and the heading of its session (to the next second-level heading).
SESSIONS = (
    ("README.md", "## A first session"),
    ("docs/quickstart.md", "## A first session"),
    ("docs/guides/faults.md", "# Breaking shards on purpose"),
)
# The stack the sessions ran on, as the pages say.
SESSION_ARGS = (
    "--latency", "lognormal:5,40", "--seed", "1", "--shard-latency", "3=fixed:800", "--zones", "4"
)  # fmt: skip


@dataclass(frozen=True)
class Example:
    command: str
    output: str


def examples(page: str, title: str) -> list[Example]:
    """Every `$ command` in a page's session, with what follows it in its block (or, when
    nothing does, the next block: the pages put long JSON answers in their own)."""
    found: list[Example] = []
    section = page.split(f"{title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, re.DOTALL)
    for index, block in enumerate(blocks):
        lines = block.rstrip("\n").split("\n")
        starts = [n for n, line in enumerate(lines) if line.startswith("$ ")]
        for position, start in enumerate(starts):
            end = starts[position + 1] if position + 1 < len(starts) else len(lines)
            output = "\n".join(lines[start + 1 : end])
            if not output and index + 1 < len(blocks):
                output = blocks[index + 1].strip()
            found.append(Example(lines[start][2:], output))
    return found


def _masked(text: str) -> str:
    """Numbers, generated fault and request ids and lists of shard ids as placeholders;
    spaces as one."""
    text = re.sub(r"\b([a-z_]+)-[0-9a-f]{6}\b", r"\1-ID", text)
    text = re.sub(r'"request_id":"[0-9a-f]{16}"', '"request_id":"ID"', text)
    text = re.sub(r"\d+(\.\d+)?", "#", text)
    text = re.sub(r"#(,#)+", "#", text)
    return " ".join(text.split())


def _json_shape(value: Any) -> Any:
    if isinstance(value, dict):
        # A generated request id differs on every run, as a number does.
        return {
            key: "#" if key == "request_id" else _json_shape(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_json_shape(item) for item in value]
    if isinstance(value, bool | str) or value is None:
        return value
    return "#"


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def assert_same_shape(expected: str, actual: str) -> None:
    wanted = _parsed(expected)
    if wanted is not None:
        assert _json_shape(_parsed(actual)) == _json_shape(wanted), actual
    elif "..." in expected:
        # An elided answer: what the README shows must appear, in order.
        rest = _masked(actual).replace(" ", "")
        for part in _masked(expected).replace(" ", "").split("..."):
            fragment = part.strip(",")
            if fragment:
                assert fragment in rest, f"{fragment!r} not in {rest!r}"
                rest = rest.split(fragment, 1)[1]
    else:
        # Line by line, in any order: a table's rows follow the shards picked at random.
        assert sorted(_masked(line) for line in actual.strip().splitlines()) == sorted(
            _masked(line) for line in expected.strip().splitlines()
        ), actual


def _localised(command: str, stack: RunningStack) -> str:
    """The command aimed at this test's stack instead of the default ports (the README's
    own ports are read once: the test's ports may look like them, 10995 like 10xxx)."""
    gateway_port = stack.gateway_url.rsplit(":", 1)[1]

    def port(match: re.Match[str]) -> str:
        if match[1] == "8000":
            return f"127.0.0.1:{gateway_port}"
        if match[1].startswith("10"):
            return f"127.0.0.1:{stack.shard_base_port + ADMIN_PORT_OFFSET + int(match[1][2:])}"
        return f"127.0.0.1:{stack.shard_base_port + int(match[1][1:])}"

    return re.sub(r"127\.0\.0\.1:(8000|10\d{3}|9\d{3})\b", port, command)


def test_the_readme_sessions_print_what_the_readme_shows(start: StartStack) -> None:
    found = [
        example
        for page, title in SESSIONS
        for example in examples((ROOT / page).read_text(), title)
    ]
    assert len(found) >= 13, [example.command for example in found]
    stack = start(*SESSION_ARGS, shards=20)
    token = stack.admin_headers()["authorization"].removeprefix("Bearer ")
    env = {
        **os.environ,
        **stack.env,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SHARDSTACK_GATEWAY": stack.gateway_url,
        "SHARDSTACK_ADMIN_TOKEN": token,  # as the pages say: the token `up` printed
    }
    for example in found:
        run = subprocess.run(
            ["bash", "-c", _localised(example.command, stack)],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 0, f"{example.command}: {run.stderr}\n{stack.diagnosis()}"
        assert_same_shape(example.output, run.stdout)
