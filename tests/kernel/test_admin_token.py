"""The admin token from a file (a Docker or Kubernetes secret) and the compose stack's
token keeper: made once, kept, replaced by an exported one."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from shard_sim.settings import ShardSettings
from shardstack_kernel.admin_token import (
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    keep_token_file,
)
from shardstack_kernel.validation import InvalidInput


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    return monkeypatch


@pytest.mark.parametrize("settings", [GatewaySettings, ShardSettings])
def test_a_token_file_is_read_without_its_line_end_and_an_exported_token_wins(
    settings: type[GatewaySettings] | type[ShardSettings],
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
) -> None:
    secret = tmp_path / "admin_token"
    secret.write_text("a-token-from-a-secret-file\n")
    clean_env.setenv(TOKEN_FILE_ENV, str(secret))
    token = settings().configured_token
    assert token is not None
    assert token.get_secret_value() == "a-token-from-a-secret-file"
    clean_env.setenv(TOKEN_ENV, "the-exported-token-wins")
    token = settings().configured_token
    assert token is not None
    assert token.get_secret_value() == "the-exported-token-wins"


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        (None, "SHARDSTACK_ADMIN_TOKEN_FILE: cannot read {path}: No such file or directory"),
        ("short\n", "SHARDSTACK_ADMIN_TOKEN_FILE: the token in {path} must be 16 to 512"),
        ("\n", "SHARDSTACK_ADMIN_TOKEN_FILE: the token in {path} must be 16 to 512"),
    ],
)
def test_a_bad_token_file_is_named(
    contents: str | None, message: str, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "admin_token"
    if contents is not None:
        path.write_text(contents)
    clean_env.setenv(TOKEN_FILE_ENV, str(path))
    with pytest.raises(ValidationError) as raised:
        GatewaySettings()
    assert message.format(path=path) in str(InvalidInput.from_settings(raised.value, "GATEWAY_"))


def test_the_keeper_makes_a_token_once_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    made, generated = keep_token_file(path, None)
    assert generated
    assert len(made) >= 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == made + "\n"
    assert keep_token_file(path, None) == (made, False)  # a later start keeps it


def test_an_exported_token_replaces_the_made_one_and_stays(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    made, _ = keep_token_file(path, None)
    assert keep_token_file(path, "an-exported-token-000") == ("an-exported-token-000", False)
    assert keep_token_file(path, None) == ("an-exported-token-000", False)
    assert made != "an-exported-token-000"


def test_a_short_exported_token_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    made, _ = keep_token_file(path, None)
    with pytest.raises(ValueError, match="SHARDSTACK_ADMIN_TOKEN must be 16 to 512"):
        keep_token_file(path, "short")
    assert keep_token_file(path, None) == (made, False)


def test_the_keeper_command_says_what_it_did_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    env = {name: value for name, value in os.environ.items() if name != TOKEN_ENV}

    def keeper(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shardstack.token_keeper", str(path)],
            env={**env, **extra}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    made = keeper()
    assert made.returncode == 0
    # Shown the one time it is made, in this service's log; never again.
    token = path.read_text().strip()
    assert made.stdout.count(token) == 1
    assert "made for this stack" in made.stdout
    kept = keeper()
    assert kept.returncode == 0
    assert token not in kept.stdout
    assert "kept in" in kept.stdout
    refused = keeper(**{TOKEN_ENV: "short"})
    assert refused.returncode == 1
    assert (
        refused.stderr == "token: SHARDSTACK_ADMIN_TOKEN must be 16 to 512 characters long, not 5\n"
    )
