"""The README stays true: its commands exist, CI runs its test command, its settings exist."""

from __future__ import annotations

import re
from pathlib import Path

from digest.cli import cli
from digest.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_command_the_readme_names_exists() -> None:
    code = re.findall(r"```.*?```|`[^`\n]+`", README, re.S)
    named = {
        command
        for span in code
        for command in re.findall(r"(?:^\s*|`|bin/)digest (?:-v )?([a-z][a-z-]+)", span, re.M)
    }
    assert named, "the README names no command"
    assert named <= set(cli.commands), named - set(cli.commands)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    test_command = next(b for b in blocks if "pytest" in b)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_every_documented_variable_is_a_setting_and_in_env_example() -> None:
    documented = set(re.findall(r"`(DIGEST_[A-Z_]+)`", README)) - {"DIGEST_TEST_POSTGRES_URL"}
    settings = {
        "DIGEST_FROM" if name == "from_address" else f"DIGEST_{name.upper()}"
        for name in Settings.model_fields
    }
    assert documented <= settings, documented - settings
    example = (ROOT / ".env.example").read_text()
    assert all(name in example for name in documented)
