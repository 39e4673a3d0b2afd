"""Replaying real recorded days over HTTP: the seen-set finds exactly each day's new papers.

The whole month of April 2026 is in ../shared/data (skipped with the reason when absent,
failed under CI); the other tests use tests/fixtures.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from http_server import API_DAYS, PAGES, RecordedServer, Reply, shared_data
from http_server import http_server as http_server  # fixture
from http_server import recorded_server as recorded_server  # fixture

from digest.app import open_app
from digest.config import load_config, load_settings
from digest.pipeline import SourceReport
from digest.pipeline import fetch_sources as fetch
from digest.store import Store


def ids_in(day: str, days: Path = API_DAYS) -> set[str]:
    return {item["paper"]["id"] for item in json.loads((days / f"{day}.json").read_text())}


@pytest.fixture
def config_for(clean_env: Path) -> Iterator[object]:
    def write(body: str) -> Path:
        path = clean_env / "digest.toml"
        path.write_text(body)
        return path

    yield write


def fetch_day(config: Path, day: str, db: str) -> list[SourceReport]:
    settings = load_settings(database_url=db, http_min_delay=0)
    with open_app(settings, load_config(config)) as app:
        today = datetime.strptime(day, "%Y-%m-%d").date()
        return fetch(app.sources, app.store, app.fetch_context(today), datetime.now(UTC))


def test_april_2026_replayed_in_order_finds_each_days_new_papers(
    http_server: RecordedServer, config_for: object, clean_env: Path
) -> None:
    days = shared_data("data/hf-daily-papers-api/days")
    http_server.api_days = days
    april = sorted(p.stem for p in days.glob("2026-04-*.json"))
    assert len(april) == 22
    config = config_for(  # type: ignore[operator]
        f'[[sources]]\nkind = "hf-api"\nbase_url = "{http_server.url}"\nlookback_days = 3\n'
    )
    db = f"sqlite:///{clean_env / 'digest.db'}"
    seen: set[str] = set()
    total_new = 0
    for day in april:
        (report,) = fetch_day(config, day, db)
        expected_new = ids_in(day, days) - seen
        assert report.new == len(expected_new), day
        if day == "2026-04-10":
            assert "2604.07429" in expected_new
        if day == "2026-04-16":
            assert "2604.07429" in ids_in(day, days) and "2604.07429" not in expected_new
        seen |= ids_in(day, days)
        total_new += report.new
    assert total_new == len(seen) == 461
    store = Store.open(db)
    assert store.count_papers() == 461
    store.close()


def test_api_day_then_html_day_two_new_eleven_updated(
    http_server: RecordedServer, config_for: object, clean_env: Path
) -> None:
    db = f"sqlite:///{clean_env / 'digest.db'}"
    api = config_for(  # type: ignore[operator]
        f'[[sources]]\nkind = "hf-api"\nbase_url = "{http_server.url}"\nlookback_days = 0\n'
    )
    (first,) = fetch_day(api, "2024-08-01", db)
    assert first.failed == 0 and first.new == first.fetched
    html = config_for(  # type: ignore[operator]
        f'[[sources]]\nkind = "hf-html"\nbase_url = "{http_server.url}"\nlookback_days = 0\n'
    )
    (second,) = fetch_day(html, "2024-08-01", db)
    assert (second.fetched, second.new, second.updated) == (13, 2, 11)


def test_etag_is_remembered_in_the_database_between_runs(
    http_server: RecordedServer, config_for: object, clean_env: Path
) -> None:
    body = (API_DAYS / "2024-08-01.json").read_bytes()
    target = "/api/daily_papers?date=2024-08-01"
    http_server.script(
        target,
        Reply(200, body, {"Content-Type": "application/json"}, etag='"v1"'),
    )
    db = f"sqlite:///{clean_env / 'digest.db'}"
    config = config_for(  # type: ignore[operator]
        f'[[sources]]\nkind = "hf-api"\nbase_url = "{http_server.url}"\nlookback_days = 0\n'
    )
    (first,) = fetch_day(config, "2024-08-01", db)
    (second,) = fetch_day(config, "2024-08-01", db)
    assert first.new > 0 and first.failed == 0
    assert (second.fetched, second.new, second.failed) == (0, 0, 0)
    hits = http_server.hits(target)
    assert len(hits) == 2 and hits[-1].headers.get("If-None-Match") == '"v1"'


def test_folder_source_reads_each_file_once_across_runs(clean_env: Path) -> None:
    pages = clean_env / "pages"
    pages.mkdir()
    (pages / "a.txt").write_bytes((PAGES / "002_f9597088ed713dd6.txt").read_bytes())
    config = clean_env / "digest.toml"
    config.write_text(f'[[sources]]\nkind = "text-dump"\npath = "{pages}"\n')
    db = f"sqlite:///{clean_env / 'digest.db'}"
    (first,) = fetch_day(config, "2026-11-22", db)
    (second,) = fetch_day(config, "2026-11-22", db)
    assert (first.fetched, first.new) == (35, 35)
    assert second.fetched == 0
    (pages / "b.txt").write_bytes((PAGES / "001_4dfcb878200cfaa6.txt").read_bytes())
    (third,) = fetch_day(config, "2026-11-22", db)
    assert third.fetched == 79
    # Touched, same bytes: nothing is read, and the new fingerprint is in the database.
    stat = (pages / "a.txt").stat()
    os.utime(pages / "a.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    (fourth,) = fetch_day(config, "2026-11-22", db)
    assert (fourth.fetched, fourth.failed) == (0, 0)
    store = Store.open(db)
    try:
        known = store.file_fingerprint(str(pages / "a.txt"))
    finally:
        store.close()
    assert known is not None and known.mtime_ns == stat.st_mtime_ns + 10**9


def test_a_cut_page_stores_its_whole_papers_and_reports_the_file(clean_env: Path) -> None:
    pages = clean_env / "pages"
    pages.mkdir()
    data = (PAGES / "002_f9597088ed713dd6.txt").read_bytes()
    (pages / "cut.txt").write_bytes(data[: data.rindex(b"We also present a valu")])
    config = clean_env / "digest.toml"
    config.write_text(f'[[sources]]\nkind = "text-dump"\npath = "{pages}"\n')
    db = f"sqlite:///{clean_env / 'digest.db'}"
    (report,) = fetch_day(config, "2026-11-22", db)
    assert (report.fetched, report.new, report.failed) == (34, 34, 1)
    (error,) = report.errors
    assert error.startswith(f"{pages / 'cut.txt'}: page ends mid-paper; last paper 'N2N Learning")
    (again,) = fetch_day(config, "2026-11-22", db)
    assert (again.fetched, again.failed) == (0, 0)  # reported once, until the file changes
