"""Saved pages on disk: folders as inboxes, broken pages beside good ones, and the config table."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pytest
from http_server import API_DAYS, API_MALFORMED, HTML_DAY, PAGES, fetch_remembering

from digest.errors import ConfigError
from digest.models import FileFingerprint, Validators
from digest.sources import (
    SOURCE_KINDS,
    FetchContext,
    HttpClient,
    MemoryState,
    PageResult,
    Source,
    build_source,
)
from digest.sources.base import SourceOptions
from digest.sources.hf_api import ApiDaySource

TODAY = date(2026, 11, 22)


class ReadOnlyMemory:
    """Only the read side of the memory: a source that tried to write would fail."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def file_fingerprint(self, path: str) -> FileFingerprint | None:
        return self._state.file_fingerprint(path)

    def http_validators(self, url: str) -> Validators | None:
        return self._state.http_validators(url)


@pytest.fixture
def ctx_state() -> MemoryState:
    return MemoryState()


def _fetch(source: Source, state: MemoryState) -> list[PageResult]:
    """One run; each page's memo is remembered as the pipeline stores it with the page."""
    with HttpClient() as http:  # unused by file sources, but part of the context
        return fetch_remembering(source, FetchContext(today=TODAY, http=http, state=state))


def _read(pages: list[PageResult]) -> list[PageResult]:
    """The pages that were read (not the touched-but-unchanged files)."""
    return [page for page in pages if not page.not_modified]


def _build(spec: dict[str, object], config_dir: Path) -> Source:
    return build_source(spec, config_dir=config_dir, where="digest.toml: sources[1]")


def _names(pages: list[PageResult]) -> list[str]:
    return [Path(p.where).name for p in pages]


def test_folder_with_a_broken_page_beside_good_ones(tmp_path: Path, ctx_state: MemoryState) -> None:
    for page in sorted(PAGES.glob("*.txt")):
        shutil.copy(page, tmp_path)
    (tmp_path / "002_broken.txt").write_text("Dear all,\n\nplease find the papers below.\n")
    (tmp_path / "README.md").write_text("not a page")  # a folder reads only .txt pages
    pages = _fetch(_build({"kind": "text-dump", "path": "."}, tmp_path), ctx_state)
    assert len(pages) == 6
    broken = [p for p in pages if p.error is not None]
    assert [Path(p.where).name for p in broken] == ["002_broken.txt"]
    assert str(broken[0].error).startswith(str(tmp_path / "002_broken.txt") + ": ")
    assert sorted(len(p.papers) for p in pages if p.error is None) == [35, 67, 79, 119, 261]


def test_folder_reads_new_and_changed_files_once(tmp_path: Path, ctx_state: MemoryState) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(PAGES / "002_f9597088ed713dd6.txt", inbox / "a.txt")
    source = _build({"kind": "text-dump", "path": "inbox"}, tmp_path)

    assert _names(_fetch(source, ctx_state)) == ["a.txt"]
    assert _fetch(source, ctx_state) == []  # nothing new

    shutil.copy(PAGES / "004_056f41bc6489462d.txt", inbox / "b.txt")
    (second,) = _fetch(source, ctx_state)
    assert Path(second.where).name == "b.txt" and len(second.papers) == 67

    # Same content, new mtime: not read again; the page says so and carries the new
    # fingerprint, so the next run does not even open it.
    stat = (inbox / "a.txt").stat()
    os.utime(inbox / "a.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    (touched,) = _fetch(source, ctx_state)
    assert touched.not_modified and touched.papers == () and touched.error is None
    assert isinstance(touched.memo, FileFingerprint)
    assert touched.memo.mtime_ns == stat.st_mtime_ns + 10**9
    assert ctx_state.files[str(inbox / "a.txt")] == touched.memo
    assert _fetch(source, ctx_state) == []

    # Changed content: read again.
    text = (inbox / "b.txt").read_text(encoding="utf-8")
    (inbox / "b.txt").write_text(text.replace("DefSent+", "DefSent++"), encoding="utf-8")
    (changed,) = _fetch(source, ctx_state)
    assert Path(changed.where).name == "b.txt"
    assert any("DefSent++" in p.title for p in changed.papers)
    assert _fetch(source, ctx_state) == []


def test_file_pages_carry_their_memo_and_sources_never_write(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_bytes((PAGES / "002_f9597088ed713dd6.txt").read_bytes())
    (tmp_path / "bad.txt").write_text("nothing to see")
    (tmp_path / "dir.txt").mkdir()  # matched by the glob, but not a readable file
    source = _build({"kind": "text-dump", "path": "*.txt"}, tmp_path)
    state = MemoryState()
    with HttpClient() as http:
        ctx = FetchContext(today=TODAY, http=http, state=ReadOnlyMemory(state))
        bad, good = source.fetch(ctx)  # a folder (dir.txt) is not listed as a page
    info = (tmp_path / "good.txt").stat()
    assert good.memo is not None and good.memo == FileFingerprint(
        str(tmp_path / "good.txt"),
        info.st_size,
        info.st_mtime_ns,
        good.memo.sha256,
    )
    # A page that failed to parse is remembered too: the same bytes would fail again.
    assert bad.error is not None and isinstance(bad.memo, FileFingerprint)
    assert state.files == {}  # nothing was written by the source


def test_unreadable_file_has_no_memo(tmp_path: Path) -> None:
    page = tmp_path / "p.txt"
    page.write_text("x")
    source = _build({"kind": "text-dump", "path": "p.txt"}, tmp_path)
    page.unlink()  # gone between loading the config and reading
    (result,) = _fetch(source, MemoryState())
    assert result.error is not None and result.memo is None


def test_broken_page_is_reported_once_until_it_changes(
    tmp_path: Path, ctx_state: MemoryState
) -> None:
    (tmp_path / "bad.txt").write_text("nothing to see")
    source = _build({"kind": "text-dump", "path": "*.txt"}, tmp_path)
    (page,) = _fetch(source, ctx_state)
    assert page.error is not None
    assert _fetch(source, ctx_state) == []
    (tmp_path / "bad.txt").write_text("still nothing to see")
    assert len(_fetch(source, ctx_state)) == 1


def test_single_file_is_read_every_run(tmp_path: Path, ctx_state: MemoryState) -> None:
    source = _build(
        {"kind": "text-dump", "path": str(PAGES / "002_f9597088ed713dd6.txt")}, tmp_path
    )
    assert [len(p.papers) for p in _fetch(source, ctx_state)] == [35]
    assert [len(p.papers) for p in _fetch(source, ctx_state)] == [35]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("gone.txt", "text-dump"),
        ("no-such-folder", "text-dump"),
        ("no-such-folder/*.txt", "text-dump"),
        ("no-such-folder/**/*.json", "hf-api"),
        ("missing/papers_*.html", "hf-html"),
    ],
)
def test_missing_path_is_a_config_error(tmp_path: Path, path: str, kind: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _build({"kind": kind, "path": path}, tmp_path)
    assert str(caught.value) == f"digest.toml: sources[1]: path {path!r} does not exist"


def test_glob_in_an_existing_folder_may_match_nothing_yet(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    source = _build({"kind": "text-dump", "path": "inbox/*.txt"}, tmp_path)
    assert _fetch(source, MemoryState()) == []


def test_hf_api_folder_with_malformed_files(tmp_path: Path, ctx_state: MemoryState) -> None:
    for name in ("2025-07-07.json", "2024-10-10.json"):
        shutil.copy(API_DAYS / name, tmp_path)
    for bad in API_MALFORMED.glob("*.json"):
        shutil.copy(bad, tmp_path)
    pages = _fetch(_build({"kind": "hf-api", "path": "."}, tmp_path), ctx_state)
    assert _names(pages) == [
        "2024-10-10.json",
        "2024-12-11.json",
        "2025-01-10.json",
        "2025-07-07.json",
    ]
    assert [len(p.papers) for p in pages] == [46, 0, 0, 1]
    assert [p.error is not None for p in pages] == [False, True, True, False]
    assert str(pages[0].papers[0].list_date) == "2024-10-10"  # from the file name


def test_partial_page_keeps_its_good_papers(tmp_path: Path, ctx_state: MemoryState) -> None:
    raw = (API_DAYS / "2024-10-10.json").read_text(encoding="utf-8")
    (tmp_path / "2024-10-10.json").write_text(raw.replace('"id": "', '"id": 7, "x": "', 1))
    (page,) = _fetch(_build({"kind": "hf-api", "path": "2024-10-10.json"}, tmp_path), ctx_state)
    assert len(page.papers) == 45 and page.error is not None
    assert "1 of 46 items skipped" in page.error.reason


def test_hf_html_glob(tmp_path: Path, ctx_state: MemoryState) -> None:
    shutil.copy(HTML_DAY, tmp_path)
    source = _build({"kind": "hf-html", "path": "papers_*.html", "name": "saved"}, tmp_path)
    assert source.name == "saved"
    (page,) = _fetch(source, ctx_state)
    assert len(page.papers) == 13


def test_registry_names_the_four_kinds() -> None:
    assert sorted(SOURCE_KINDS) == ["arxiv", "hf-api", "hf-html", "text-dump"]
    options = SourceOptions("hf-api", "n")
    assert options.lookback_days == 3 and options.base_url == "https://huggingface.co"


def test_defaults_of_a_web_source() -> None:
    source = _build({"kind": "hf-api"}, Path("."))
    assert source.name == "hf-api https://huggingface.co"
    assert isinstance(source, ApiDaySource)
    assert (source.lookback_days, str(source.timezone)) == (3, "UTC")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "text-dump", "pth": "x"}, "unknown key 'pth' (expected kind, name, path)"),
        ({"path": "x"}, "missing key 'kind'"),
        ({"kind": "rss"}, "kind 'rss' is not one of text-dump, hf-api, hf-html"),
        ({"kind": 3}, "kind 3 is not one of"),
        ({"kind": "text-dump"}, "kind 'text-dump' needs a 'path'"),
        ({"kind": "text-dump", "path": ""}, "path must not be empty"),
        ({"kind": "text-dump", "path": 5}, "path must be a string, not 5"),
        ({"kind": "text-dump", "path": "x", "lookback_days": 2}, "'lookback_days' does not apply"),
        ({"kind": "hf-api", "query": "x"}, "key 'query' does not apply to kind 'hf-api'"),
        ({"kind": "hf-api", "lookback_days": "3"}, "lookback_days must be a whole number"),
        ({"kind": "hf-api", "lookback_days": True}, "lookback_days must be a whole number"),
        ({"kind": "hf-api", "lookback_days": -1}, "lookback_days must be 0..366"),
        ({"kind": "hf-api", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"kind": "hf-api", "base_url": "ftp://x"}, "base_url 'ftp://x' is not an http(s) URL"),
        ({"kind": "hf-api", "path": "d", "lookback_days": 1}, "'lookback_days' has no effect"),
        ({"kind": "hf-html", "query": ""}, "query must not be empty"),
        ({"kind": "hf-html", "name": ["a"]}, "name must be a string"),
    ],
)
def test_bad_source_tables_are_one_line_naming_where(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _build(spec, Path("."))
    text = str(caught.value)
    assert text.startswith("digest.toml: sources[1]: ") and message in text
    assert "\n" not in text
