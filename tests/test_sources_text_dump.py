"""The saved text dumps of huggingface.co/papers (shapes A, A', B) read as a user would check."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from http_server import PAGES

from digest.errors import SourceError
from digest.models import Paper
from digest.sources.text_dump import parse_text_dump

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "pages"

COUNTS = {
    "000_0d1b150f40e33697.txt": 119,
    "001_4dfcb878200cfaa6.txt": 79,
    "002_f9597088ed713dd6.txt": 35,
    "003_a148c10466c9a820.txt": 261,
    "004_056f41bc6489462d.txt": 67,
}


def _read(name: str, *, year: int | None = None, saved_on: date | None = None) -> list[Paper]:
    path = PAGES / name
    return parse_text_dump(path.read_bytes(), str(path), year=year, saved_on=saved_on)


@pytest.mark.parametrize(("name", "count"), sorted(COUNTS.items()))
def test_each_page_gives_its_papers(name: str, count: int) -> None:
    papers = _read(name, year=2026)
    assert len(papers) == count
    assert all(p.title and p.abstract for p in papers)
    assert all(p.source == str(PAGES / name) for p in papers)
    # No banner/header text or meta line leaks into a title.
    titles = [p.title for p in papers]
    assert not any(t.startswith(("Subscribe", "Get trending", "•", "·")) for t in titles)
    assert all(len(t) < 300 for t in titles)
    assert all(len(p.abstract) > 300 for p in papers)


def test_bundled_examples_are_the_shared_pages() -> None:
    for name in COUNTS:
        assert (EXAMPLES / name).read_bytes() == (PAGES / name).read_bytes()


def test_shape_a_fields() -> None:
    papers = _read("001_4dfcb878200cfaa6.txt", year=2026)
    first, second, third = papers[:3]
    assert first.title == (
        "Scaling Laws for Robust Comparison of Open Foundation Language-Vision Models and Datasets"
    )
    assert first.abstract.startswith("In studies of transferable learning, scaling laws")
    # "Jun 4 1": no year = the page's year; the trailing number is the comment count.
    assert (first.published, first.comments, first.author_count) == (date(2026, 6, 4), 1, 7)
    assert first.upvotes is None
    assert (second.published, second.comments, second.author_count) == (date(2021, 2, 26), 3, 12)
    assert (third.published, third.comments) == (date(2022, 9, 30), None)
    assert papers[-1].title.startswith("Stationary Representations: Optimally Approximating")
    assert papers[-1].published == date(2024, 5, 4)
    assert sum(p.comments or 0 for p in papers) == 28
    assert sum(1 for p in papers if p.comments) == 11


def test_shape_a_organisation_line_and_paper_without_meta() -> None:
    papers = {p.title.split(":")[0]: p for p in _read("001_4dfcb878200cfaa6.txt", year=2026)}
    critique = papers["Critique-Coder"]
    assert (critique.organization, critique.author_count) == ("TIGER-Lab", None)
    assert (critique.published, critique.comments) == (date(2026, 9, 26), 2)
    m3ret = papers["M3Ret"]
    assert (m3ret.published, m3ret.author_count, m3ret.comments) == (None, None, None)
    assert m3ret.abstract  # its abstract is not lost to the next paper
    assert papers["BenchX"].author_count is not None


def test_shape_a_second_file() -> None:
    papers = _read("002_f9597088ed713dd6.txt", year=2026)
    assert papers[0].title.startswith("Evaluating the Feasibility of Inferring Dietary Behavior")
    assert (papers[0].published, papers[0].author_count) == (date(2026, 5, 26), 6)
    assert papers[-1].title.startswith("N2N Learning: Network to Network Compression")
    assert papers[-1].published == date(2017, 9, 18)
    assert sum(1 for p in papers if p.published is None) == 1


def test_shape_a_prime_has_titles_and_abstracts_only() -> None:
    papers = _read("004_056f41bc6489462d.txt", year=2026)
    assert papers[0].title == (
        "A Review of Deep Learning Approaches for Non-Invasive Cognitive Impairment Detection"
    )
    assert papers[-1].title.startswith("DefSent+: Improving sentence embeddings")
    assert papers[-1].abstract.endswith("feature-based transfer for NLP downstream tasks.")
    assert all(p.published is None and p.author_count is None for p in papers)


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        (
            "000_0d1b150f40e33697.txt",
            "Online Learning for Recommendations at Grubhub",
            "FILM: How can Few-Shot Image Classification Benefit from Pre-Trained Language Models?",
        ),
        (
            "003_a148c10466c9a820.txt",
            "ScaLearn: Simple and Highly Parameter-Efficient Task Transfer by Learning to Scale",
            "Task Adaptive Parameter Sharing for Multi-Task Learning",
        ),
    ],
)
def test_shape_b_subscribe_glued_to_first_title(name: str, first: str, last: str) -> None:
    papers = _read(name)
    assert papers[0].title == first  # "Subscribe" stripped
    assert papers[-1].title == last
    assert papers[0].abstract.startswith(("We propose a method", "Multi-task learning (MTL)"))


def test_year_inferred_from_save_date_and_printed_years() -> None:
    name = "001_4dfcb878200cfaa6.txt"
    # Page "Nov 20" saved on 2026-11-22 → 2026.
    assert _read(name, saved_on=date(2026, 11, 22))[0].published == date(2026, 6, 4)
    # Saved early January: "Nov 20" was last year.
    assert _read(name, saved_on=date(2027, 1, 5))[0].published == date(2026, 6, 4)
    # 001 prints years up to 2024, so without a save date its year is at least 2025.
    assert _read(name)[0].published == date(2025, 6, 4)
    # 002 prints 2025 for some papers, so its own year is at least 2026 even if the
    # file looks older (a copied file's mtime).
    other = "002_f9597088ed713dd6.txt"
    assert _read(other, saved_on=date(2025, 12, 1))[0].published == date(2026, 5, 26)
    # An explicit year wins; printed years stay as printed.
    papers = _read(name, year=2030)
    assert (papers[0].published, papers[1].published) == (date(2030, 6, 4), date(2021, 2, 26))


def test_no_year_evidence_leaves_yearless_dates_unknown() -> None:
    text = (
        "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nMar 1\n\n"
        "A Title\n\nAn abstract.\n\n  • 3 authors\n·\nFeb 2 4\n"
    )
    (paper,) = parse_text_dump(text, "t.txt")
    assert (paper.published, paper.comments, paper.author_count) == (None, 4, 3)
    (paper,) = parse_text_dump(text, "t.txt", saved_on=date(2024, 3, 1))
    assert paper.published == date(2024, 2, 2)


def test_crlf_and_bom_are_accepted() -> None:
    raw = (PAGES / "002_f9597088ed713dd6.txt").read_text(encoding="utf-8")
    data = b"\xef\xbb\xbf" + raw.replace("\n", "\r\n").encode()
    assert len(parse_text_dump(data, "x.txt", year=2026)) == 35


def test_shape_b_missing_abstract_resynchronises() -> None:
    lines = (PAGES / "000_0d1b150f40e33697.txt").read_text(encoding="utf-8").splitlines()
    del lines[5]  # the second paper's abstract
    papers = parse_text_dump("\n".join(lines), "x.txt")
    assert len(papers) == 119
    assert papers[1].abstract == ""
    assert papers[2].title == lines[5] and papers[2].abstract == lines[6]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b'[{"paper": {"id": "2401.00001"}}]',
        b"<html><body>Daily Papers</body></html>",
        b"Some notes\n\nabout papers\n",
    ],
)
def test_not_a_page_is_one_error_naming_the_file(data: bytes) -> None:
    with pytest.raises(SourceError) as caught:
        parse_text_dump(data, "inbox/notes.txt")
    assert caught.value.where == "inbox/notes.txt"
    assert str(caught.value).startswith("inbox/notes.txt")


def test_misaligned_page_is_rejected_with_line() -> None:
    lines = (PAGES / "003_a148c10466c9a820.txt").read_text(encoding="utf-8").splitlines()
    lines[10] = lines[11]  # two abstracts in a row: cannot be read safely
    with pytest.raises(SourceError) as caught:
        parse_text_dump("\n".join(lines), "x.txt")
    assert caught.value.line == 11  # 1-based: the fifth title line


def test_site_menu_above_the_banner_is_ignored() -> None:
    raw = (PAGES / "004_056f41bc6489462d.txt").read_text(encoding="utf-8")
    menu = "Hugging Face\n\nModels\n\nDatasets\n\nSpaces\n\nPosts\n\nDocs\n\nPricing\n\n"
    papers = parse_text_dump(menu + raw, "x.txt")
    assert len(papers) == 67 and papers[0].title.startswith("A Review of Deep Learning")


def test_subscribe_on_its_own_line_in_shape_b() -> None:
    raw = (PAGES / "000_0d1b150f40e33697.txt").read_text(encoding="utf-8")
    papers = parse_text_dump(raw.replace("\nSubscribe", "\nSubscribe\n", 1), "x.txt")
    assert len(papers) == 119
    assert papers[0].title == "Online Learning for Recommendations at Grubhub"
