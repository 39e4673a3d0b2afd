"""Running the `digest` command in-process, as a user would from a shell."""

from __future__ import annotations

import pytest

from digest.cli import main


def run_digest(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`digest ARGS...`: (exit code, stdout, stderr)."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
