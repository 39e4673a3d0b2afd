"""The Hugging Face daily_papers JSON: real days, its schema history, and broken files.

Most tests read the recorded days in tests/fixtures; the ones about all 48 recorded days
read ../shared/data (skipped with the reason when it is absent, failed under CI).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from http_server import API_DAYS, API_MALFORMED, shared_data

from digest.errors import SourceError
from digest.models import Paper
from digest.sources import PartialPageError
from digest.sources.hf_api import parse_daily_papers


def _day(day: str, days: Path = API_DAYS) -> list[Paper]:
    path = days / f"{day}.json"
    return parse_daily_papers(path.read_bytes(), str(path), list_date=date.fromisoformat(day))


def _by_id(day: str, days: Path = API_DAYS) -> dict[str | None, Paper]:
    return {p.arxiv_id: p for p in _day(day, days)}


def _all_days() -> Path:
    return shared_data("data/hf-daily-papers-api/days")


def test_every_recorded_day_reads_completely() -> None:
    total = 0
    ids: set[str | None] = set()
    days = _all_days()
    for path in sorted(days.glob("*.json")):
        items = json.loads(path.read_bytes())
        papers = _day(path.stem, days)
        assert len(papers) == len(items), path.name
        assert all(p.list_date == date.fromisoformat(path.stem) for p in papers)
        assert all(p.title and p.abstract and p.authors and p.published for p in papers)
        assert all(p.upvotes is not None and p.comments is not None for p in papers)
        assert all("\n" not in p.title + p.abstract and "  " not in p.title for p in papers)
        total += len(papers)
        ids.update(p.arxiv_id for p in papers)
    assert (total, len(ids)) == (1059, 1055)


def test_fixture_days_read_completely() -> None:
    paths = sorted(API_DAYS.glob("*.json"))
    assert len(paths) == 8
    for path in paths:
        items = json.loads(path.read_bytes())
        papers = _day(path.stem)
        assert len(papers) == len(items), path.name
        assert all(p.title and p.abstract and p.authors and p.published for p in papers)
        assert all("\n" not in p.title + p.abstract and "  " not in p.title for p in papers)


def test_fixtures_are_copies_of_the_shared_days() -> None:
    days = _all_days()
    for path in sorted(API_DAYS.glob("*.json")):
        assert path.read_bytes() == (days / path.name).read_bytes(), path.name
    malformed = days.parent / "malformed"
    for path in sorted(API_MALFORMED.glob("*.json")):
        assert path.read_bytes() == (malformed / path.name).read_bytes(), path.name


def test_newest_schema_maps_every_field() -> None:
    paper = _by_id("2026-08-21")["2608.19880"]
    assert paper.title == "EnvHarness: Awakening Static Worlds for Agent Learning"
    assert paper.abstract.startswith("LLM agents learn by interacting with environments")
    assert paper.authors[:2] == ("Chengsong Huang", "Zifeng Wang")
    assert paper.author_count == len(paper.authors) == 17
    assert (paper.published, paper.list_date) == (date(2026, 8, 20), date(2026, 8, 21))
    assert (paper.upvotes, paper.comments, paper.submitter) == (163, 1, "taesiri")
    assert paper.ai_summary is not None and paper.ai_summary.startswith("EnvHarness and EnvRigger")
    assert paper.ai_keywords[:3] == ("LLM agents", "Environment Harness", "EnvHarness")
    assert paper.github_repo == "https://github.com/google-research/envharness"
    assert (paper.github_stars, paper.project_page) == (8, "https://envharness.com/")
    assert paper.organization == "Google"
    assert paper.key == "arxiv:2608.19880"


def test_oldest_schema_leaves_missing_fields_empty() -> None:
    paper = _by_id("2024-05-27")["2405.15738"]
    # paper.title is hard-wrapped in the file: "...Large Multimodal\n  Models"
    assert paper.title == (
        "ConvLLaVA: Hierarchical Backbones as Visual Encoder for Large Multimodal Models"
    )
    assert (paper.upvotes, paper.comments, paper.author_count) == (32, 3, 9)
    assert paper.published == date(2024, 5, 24)
    assert paper.submitter is None and paper.ai_summary is None and paper.ai_keywords == ()
    assert paper.github_repo is None and paper.github_stars is None
    assert paper.project_page is None and paper.organization is None


def test_real_edge_cases() -> None:
    llama = _by_id("2024-08-01")["2407.21783"]
    assert (llama.author_count, llama.upvotes, llama.comments) == (533, 49, 4)
    assert _by_id("2026-05-13")["2605.12357"].title.startswith("δ-mem:")
    assert _by_id("2024-10-10")["2410.05791"].title.startswith("FürElise:")


def test_real_edge_cases_in_the_whole_recorded_set() -> None:
    days = _all_days()
    assert _by_id("2026-04-15", days)["2604.12374"].author_count == 546
    # A hidden author is still an author of the paper.
    assert "Bo Li" in _by_id("2025-09-30", days)["2509.22518"].authors
    zero = [p for path in days.glob("*.json") for p in _day(path.stem, days) if p.upvotes == 0]
    assert len(zero) == 69


def test_list_date_falls_back_to_submitted_on_daily_at() -> None:
    path = API_DAYS / "2026-08-21.json"
    papers = parse_daily_papers(path.read_bytes(), "x.json")
    assert {p.list_date for p in papers} == {date(2026, 8, 21)}
    old = parse_daily_papers((API_DAYS / "2024-05-27.json").read_bytes(), "y.json")
    assert {p.list_date for p in old} == {None}  # no such field then: unknown, not guessed


@pytest.mark.parametrize("name", ["2024-12-11.json", "2025-01-10.json"])
def test_malformed_file_is_one_error_naming_it(name: str) -> None:
    path = API_MALFORMED / name
    with pytest.raises(SourceError) as caught:
        parse_daily_papers(path.read_bytes(), str(path))
    assert caught.value.where == str(path)
    assert not isinstance(caught.value, PartialPageError)
    assert "\n" not in str(caught.value)


def test_one_bad_item_keeps_the_others() -> None:
    items = json.loads((API_DAYS / "2026-04-01.json").read_bytes())
    items[3] = "{'paper': {'id': '2604.00001'}}"  # a repr string, as the broken upstream wrote
    del items[5]["paper"]["title"]
    items[5].pop("title", None)
    with pytest.raises(PartialPageError) as caught:
        parse_daily_papers(json.dumps(items), "day.json")
    error = caught.value
    assert len(error.papers) == len(items) - 2 and error.skipped == 2
    assert "2 of" in error.reason and "item 3" in error.reason


def test_optional_fields_of_the_wrong_type_are_dropped_not_fatal() -> None:
    item = {
        "paper": {
            "id": "2401.00001",
            "title": "T",
            "summary": "S",
            "authors": [{"name": "A"}, {"name": None}, "B"],
            "publishedAt": "not a date",
            "upvotes": "12",
            "githubStars": True,
            "ai_keywords": "one",
            "organization": "Org",
        },
        "numComments": -1,
    }
    (paper,) = parse_daily_papers(json.dumps([item]), "x.json")
    assert paper.authors == ("A", "B") and paper.author_count == 2
    assert paper.published is None and paper.upvotes is None and paper.comments is None
    assert paper.github_stars is None and paper.ai_keywords == () and paper.organization is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe\xfa", "not JSON"),
        (b"null", "expected a JSON array"),
        (b"[1, 2]", "no readable paper"),
        (b'[{"paper": {"title": "no id"}}]', "no readable paper"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_not_a_response(data: bytes, reason: str) -> None:
    with pytest.raises(SourceError, match=reason) as caught:
        parse_daily_papers(data, "https://huggingface.co/api/daily_papers?date=2024-01-01")
    assert caught.value.where.startswith("https://huggingface.co/api/daily_papers")


def test_empty_day_is_no_papers() -> None:
    assert parse_daily_papers(b"[]", "x.json") == []


def test_a_saved_day_cut_anywhere_keeps_only_whole_papers() -> None:
    path = API_DAYS / "2024-05-27.json"
    data = path.read_bytes()
    full = _day("2024-05-27")
    kept = []
    for cut in range(0, len(data), len(data) // 120):
        try:
            papers = parse_daily_papers(data[:cut], str(path), list_date=date(2024, 5, 27))
        except PartialPageError as exc:
            assert list(exc.papers) == full[: len(exc.papers)], cut
            assert exc.reason.startswith("page ends mid-paper; last paper "), cut
            assert exc.reason.endswith(" dropped"), cut
            kept.append(len(exc.papers))
            continue
        except SourceError as exc:
            assert "not JSON" in exc.reason, cut  # cut inside the first item
            continue
        raise AssertionError(f"cut at {cut} read as a whole page of {len(papers)} papers")
    assert kept == sorted(kept) and kept[-1] == len(full) - 1


def test_cut_day_names_the_dropped_paper() -> None:
    items = json.loads((API_DAYS / "2026-04-01.json").read_bytes())
    text = json.dumps(items, indent=2, ensure_ascii=False)
    title = items[5]["paper"]["title"]
    at = text.index(json.dumps(title, ensure_ascii=False)) + len(json.dumps(title)) + 20
    with pytest.raises(PartialPageError) as caught:
        parse_daily_papers(text[:at].encode(), "day.json")
    assert str(caught.value) == f"day.json: page ends mid-paper; last paper {title!r} dropped"
    assert len(caught.value.papers) == 5 and caught.value.skipped == 1
    # Cut before the item shows its title: named by its arXiv id.
    at = text.index(items[5]["paper"]["id"]) + 20
    with pytest.raises(PartialPageError, match=f"last paper '{items[5]['paper']['id']}' dropped"):
        parse_daily_papers(text[:at].encode(), "day.json")


@pytest.mark.parametrize(
    "data",
    [
        b'[{"paper": {"id": "2401.00001", "title": "T"}}, oops',
        b'[{"paper": {"id": "2401.00001", "title": "T"}} {"paper": {}}]',
        b'[{"paper": {"id": "2401.00001", "title": "T"}}, {"paper": {"id": 2401x}}',
    ],
)
def test_broken_not_cut_json_is_still_one_error(data: bytes) -> None:
    with pytest.raises(SourceError, match="not JSON") as caught:
        parse_daily_papers(data, "x.json")
    assert not isinstance(caught.value, PartialPageError)
