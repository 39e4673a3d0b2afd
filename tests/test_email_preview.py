"""`digest preview EMAIL [--open]`: the next digest as files, and nothing when nothing is new."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_runner import run_digest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "examples" / "pages" / "004_056f41bc6489462d.txt"
CONFIG = f"""
[[sources]]
kind = "text-dump"
path = "{PAGE}"

[[subscribers]]
email = "ada@example.org"
name = "Ada"
topics = ["reinforcement learning", "language models"]
"""

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Run:
    """`digest ARGS...` in a clean folder with a one-page config and the BM25 ranker."""
    (clean_env / "digest.toml").write_text(CONFIG)
    monkeypatch.setenv("DIGEST_RANKER", "lexical")

    def invoke(*args: str) -> tuple[int, str, str]:
        return run_digest(capsys, *args)

    return invoke


def test_preview_writes_the_html_and_the_text_and_prints_the_html_path(
    run: Run, clean_env: Path
) -> None:
    code, out, err = run("preview", "ada@example.org")
    assert code == 0, err
    page = Path(out.strip())  # stdout is the path alone, for scripts
    assert page == Path("preview/ada@example.org.html")
    assert page.read_text().startswith("<!DOCTYPE html>")
    text = page.with_suffix(".txt").read_text()
    assert text.splitlines()[0] in err  # the subject, said on stderr with the text's path
    assert "preview/ada@example.org.txt" in err
    assert " 1. " in text and "https://huggingface.co/papers" in text
    assert not (clean_env / "outbox").exists()


def nothing_new(folder: Path) -> None:
    """A config whose source holds no paper: the next digest has nothing new."""
    (folder / "pages").mkdir()
    config = CONFIG.replace(str(PAGE), str(folder / "pages"))
    (folder / "digest.toml").write_text(config)


def test_preview_with_nothing_new_says_so_and_writes_nothing(run: Run, clean_env: Path) -> None:
    nothing_new(clean_env)
    code, out, err = run("preview", "ada@example.org")
    assert code == 0
    assert out == ""
    assert "nothing new" in err and "no preview written" in err
    assert not (clean_env / "preview").exists()


def test_an_old_preview_is_called_out_of_date_when_nothing_is_new(
    run: Run, clean_env: Path
) -> None:
    (clean_env / "preview").mkdir()
    (clean_env / "preview" / "ada@example.org.html").write_text("<!DOCTYPE html>yesterday")
    nothing_new(clean_env)
    code, out, err = run("preview", "ada@example.org")
    assert code == 0 and out == ""
    assert "out of date: preview/ada@example.org.html" in err
    assert (clean_env / "preview" / "ada@example.org.html").read_text().endswith("yesterday")


def test_open_needs_a_terminal(run: Run) -> None:
    code, out, err = run("preview", "ada@example.org", "--open")
    assert code == 0 and out.strip().endswith(".html")
    assert "not opened: the output is not a terminal" in err
