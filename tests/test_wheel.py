"""paper-digest installs anywhere: the wheel carries its templates, example config and pages.

The fast tests check where the bundled files are found and how templates are overridden;
the slow one builds the wheel, installs it into a fresh virtualenv and runs it from an
empty folder with no DIGEST_* settings.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Mapping
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from pathlib import Path

import jinja2
import pytest

import digest
from digest.config import DEFAULT_TEMPLATES, EXAMPLE_CONFIG, bundled, load_config
from digest.errors import ConfigError
from digest.models import Digest, Paper, RankedPaper, Subscriber
from digest.render import make_environment, render_message

ROOT = Path(__file__).resolve().parents[1]
FROM_CHECKOUT = Path(digest.__file__).resolve().parent == ROOT / "digest"
# What `pip install .` must not see from a developer's tree.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
    ".env", "outbox", "preview", "*.db", "*.db-journal",
)  # fmt: skip
# pip's words for "the index is unreachable" (not for "no such package": that fails).
OFFLINE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Connection refused|Temporary "
    r"failure in name resolution|Name or service not known|Network is unreachable"
    r"|ConnectTimeout|ProxyError|requirement setuptools\S* \(from versions: none\)",
)


def render_both(env: jinja2.Environment) -> tuple[str, str]:
    paper = Paper("Scaling Laws", "We study scaling.", arxiv_id="2604.00001")
    ada = Subscriber("ada@example.org", "Ada", topics=("scaling",))
    digest_ = Digest(ada, (RankedPaper(paper, 1.0, ("topic: scaling",)),), date(2026, 11, 22))
    now = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    message = render_message(digest_, env, sender="d@example.org", now=now)
    text = message.get_body(("plain",))
    page = message.get_body(("html",))
    assert text is not None and page is not None
    return text.get_content(), page.get_content()


# The bundled files and the templates loader.


@pytest.mark.skipif(not FROM_CHECKOUT, reason="digest is not imported from this checkout")
def test_a_checkout_uses_the_top_level_templates_and_example() -> None:
    """Editable install or source tree: editing templates/ or the example takes effect."""
    assert DEFAULT_TEMPLATES == ROOT / "templates"
    assert EXAMPLE_CONFIG == ROOT / "digest.example.toml"
    assert bundled("examples") == ROOT / "examples"
    assert not (ROOT / "digest" / "templates").exists(), "a stray copy would shadow templates/"


def test_the_example_config_reads_the_bundled_pages() -> None:
    config = load_config(EXAMPLE_CONFIG, is_example=True)
    (source,) = config.sources
    pages = (config.directory / str(source["path"])).resolve()
    assert pages == (bundled("examples") / "pages").resolve()
    assert len(list(pages.glob("*.txt"))) == 5


def test_the_bundled_templates_render_without_settings() -> None:
    text, page = render_both(make_environment())
    assert "Scaling Laws" in text and "Scaling Laws" in page


def test_an_override_folder_replaces_one_template_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("Custom: {{ papers[0].paper.title }}\n")
    text, page = render_both(make_environment(tmp_path))
    assert text == "Custom: Scaling Laws\n"
    assert page.startswith("<!DOCTYPE html>")  # the bundled HTML template


def test_a_missing_templates_folder_is_one_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match="DIGEST_TEMPLATES_DIR") as caught:
        make_environment(missing)
    assert str(missing) in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_template_names_the_folders_and_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("digest.render.DEFAULT_TEMPLATES", tmp_path / "bundled")
    (tmp_path / "bundled").mkdir()
    (tmp_path / "bundled" / "digest.txt.j2").write_text("{{ subject }}\n")
    with pytest.raises(ConfigError) as caught:
        make_environment(tmp_path)
    message = str(caught.value)
    assert "'digest.html.j2' not found" in message and str(tmp_path / "bundled") in message


def test_a_broken_override_names_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "digest.html.j2").write_text("<p>\n{% for x in %}\n")
    with pytest.raises(ConfigError, match=r"digest\.html\.j2: line 2: "):
        make_environment(tmp_path)


def test_an_override_naming_an_unknown_variable_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("{{ no_such_thing }}\n")
    env = make_environment(tmp_path)
    with pytest.raises(ConfigError, match=r"digest\.txt\.j2: 'no_such_thing' is undefined"):
        render_both(env)


# The wheel, installed into a fresh virtualenv.


def run(
    args: list[str | Path], cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def pip(python: Path | str, *args: str | Path, cwd: Path) -> None:
    """`python -m pip ...`; skipped outside CI when the package index cannot be reached."""
    proc = run([python, "-m", "pip", "--disable-pip-version-check", *args], cwd=cwd)
    if proc.returncode == 0:
        return
    output = proc.stdout + proc.stderr
    offline = [line.strip() for line in output.splitlines() if OFFLINE.search(line)]
    if offline and os.environ.get("CI") != "true":
        pytest.skip(f"pip cannot reach the package index (not under CI): {offline[0]}")
    pytest.fail(f"pip {' '.join(map(str, args))} failed:\n{output}")


def clean_env(home: Path) -> dict[str, str]:
    """This environment without DIGEST_* settings or anything pointing at the checkout."""
    dropped = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DIGEST_") and name not in dropped
    }
    env["HOME"] = str(home)
    return env


@pytest.mark.slow
def test_the_wheel_installs_and_runs_from_an_empty_folder(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info into it
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    dist = tmp_path / "dist"
    pip(sys.executable, "wheel", "--no-deps", "-w", dist, source, cwd=tmp_path)
    (wheel,) = dist.glob("paper_digest-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("templates", "examples", "digest.example.toml"):
        top = ROOT / name
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for file in files:
            assert f"digest/{file.relative_to(ROOT).as_posix()}" in names
    data = [p for p in (ROOT / "digest" / "data").iterdir() if p.is_file()]
    assert {f"digest/data/{p.name}" for p in data} <= names
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"
    assert {n.split("/")[0] for n in names} == {"digest", dist_info}

    # A plain virtualenv; this pip installs into it (saves bootstrapping one), dependencies
    # from the index through pip's cache, without byte-compiling them (halves the time).
    venv = tmp_path / "venv"
    created = run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    pip(sys.executable, "--python", python, "install", "--no-compile", wheel, cwd=tmp_path)

    work = tmp_path / "empty"
    work.mkdir()
    env = clean_env(home=tmp_path / "home")
    (tmp_path / "home").mkdir()
    where = run([python, "-c", "import digest, sysconfig; print(digest.__file__); "
                 "print(sysconfig.get_paths()['purelib'])"], cwd=work, env=env)  # fmt: skip
    assert where.returncode == 0, where.stderr
    module, purelib = where.stdout.split()
    assert Path(module).is_relative_to(purelib) and Path(purelib).is_relative_to(venv)

    example = tomllib.loads((ROOT / "digest.example.toml").read_text())
    first, *_ = (s["email"] for s in example["subscribers"])
    preview = run([venv / "bin" / "digest", "preview", first], cwd=work, env=env)
    assert preview.returncode == 0, preview.stderr
    page = (work / preview.stdout.strip()).read_text()
    titles = [html.unescape(t).strip() for t in re.findall(r"<h2[^>]*>\s*<a [^>]*>(.*?)</a>", page)]
    assert titles, page
    pages_text = "".join(p.read_text() for p in (ROOT / "examples" / "pages").glob("*.txt"))
    assert all(t in pages_text for t in titles)

    sent = run([venv / "bin" / "digest", "send-now"], cwd=work, env=env)
    assert sent.returncode == 0, sent.stderr
    assert "bundled example config" in sent.stderr
    assert re.search(r"^subscriber\s+new papers\s+sent\s+result$", sent.stdout, re.M)
    emls = sorted((work / "outbox").glob("*.eml"))
    assert len(emls) == len(example["subscribers"])
    message = message_from_bytes(emls[0].read_bytes(), policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert sorted(p.name for p in work.iterdir()) == ["digest.db", "outbox", "preview"]
