"""The saved text dumps of huggingface.co/papers (shapes A, A', B) read as a user would check."""

from __future__ import annotations

import os
import re
import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
from http_server import PAGES, shared_data

from digest.errors import SourceError
from digest.models import Paper
from digest.sources import FetchContext, HttpClient, MemoryState, PartialPageError, build_source
from digest.sources.text_dump import parse_text_dump

COUNTS = {
    "000_0d1b150f40e33697.txt": 119,
    "001_4dfcb878200cfaa6.txt": 79,
    "002_f9597088ed713dd6.txt": 35,
    "003_a148c10466c9a820.txt": 261,
    "004_056f41bc6489462d.txt": 67,
}


def _read(name: str, *, year: int | None = None, today: date | None = None) -> list[Paper]:
    path = PAGES / name
    return parse_text_dump(path.read_bytes(), str(path), year=year, today=today)


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
    shared = shared_data("pages")
    for name in COUNTS:
        assert (PAGES / name).read_bytes() == (shared / name).read_bytes()


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


def test_yearless_dates_take_the_year_of_the_page_date() -> None:
    # 001 is a "Nov 20" page printing years up to 2024: the page is from 2025 whatever
    # the run date, and "Sep 26" is 2025-09-26 (Critique-Coder is arXiv 2509.22824).
    name = "001_4dfcb878200cfaa6.txt"
    for today in (None, date(2025, 11, 20), date(2026, 11, 22), date(2031, 1, 5)):
        papers = {p.title.split(":")[0]: p for p in _read(name, today=today)}
        assert papers["Critique-Coder"].published == date(2025, 9, 26)
        assert papers[
            "Scaling Laws for Robust Comparison of Open Foundation Language-Vision "
            "Models and Datasets"
        ].published == date(2025, 6, 4)
    # 002 ("Jul 2") prints 2025 for some papers, so it is from 2026.
    other = _read("002_f9597088ed713dd6.txt", today=date(2030, 1, 1))
    assert other[0].published == date(2026, 5, 26)
    # An explicit year wins; printed years stay as printed.
    papers = _read(name, year=2030)
    assert (papers[0].published, papers[1].published) == (date(2030, 6, 4), date(2021, 2, 26))


def _page(header_date: str | None, *dates: str) -> str:
    """A shape-A page: an optional page date under the header, one paper per date line."""
    header = "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
    if header_date:
        header += f"{header_date}\n\n"
    papers = [
        f"Paper {n}\n\nAn abstract of paper {n}.\n\n  • 3 authors\n·\n{line}"
        for n, line in enumerate(dates)
    ]
    return header + "\n\n".join(papers)


def _dates(text: str, **kwargs: object) -> list[date | None]:
    return [p.published for p in parse_text_dump(text, "t.txt", **kwargs)]  # type: ignore[arg-type]


def test_no_year_evidence_dates_the_page_from_the_run_date() -> None:
    text = _page("Mar 1", "Feb 2 4")
    (paper,) = parse_text_dump(text, "t.txt")
    assert (paper.published, paper.comments, paper.author_count) == (None, 4, 3)  # not guessed
    assert _dates(text, today=date(2024, 3, 1)) == [date(2024, 2, 2)]
    assert _dates(text, today=date(2024, 2, 15)) == [date(2023, 2, 2)]  # a "Mar 1" page of 2023


def test_december_january_boundary() -> None:
    # A "Jan 3" page read on 2027-01-05: late-December dates are from the year before.
    text = _page("Jan 3", "Dec 30", "Jan 2", "Jan 3")
    assert _dates(text, today=date(2027, 1, 5)) == [
        date(2026, 12, 30),
        date(2027, 1, 2),
        date(2027, 1, 3),  # on the page date
    ]
    # A "Dec 30" page read on 2027-01-02 is from 2026; a "Jan 1" on it is 2026-01-01.
    text = _page("Dec 30", "Dec 30", "Dec 1", "Jan 1")
    assert _dates(text, today=date(2027, 1, 2)) == [
        date(2026, 12, 30),
        date(2026, 12, 1),
        date(2026, 1, 1),
    ]
    # Printed years date the page itself, whatever the run date: the site prints a year
    # only for other years, so "Dec 29, 2026" printed means the page is of 2027.
    text = _page("Jan 3", "Dec 30", "Dec 29, 2026")
    assert _dates(text) == [date(2026, 12, 30), date(2026, 12, 29)]
    assert _dates(text, today=date(2031, 6, 1)) == [date(2026, 12, 30), date(2026, 12, 29)]
    # A page date printed with its year.
    assert _dates(_page("Jan 3, 2025", "Dec 30", "Jan 3"), today=date(2031, 6, 1)) == [
        date(2024, 12, 30),
        date(2025, 1, 3),
    ]


def test_page_without_a_date_of_its_own_uses_the_run_date() -> None:
    text = _page(None, "Dec 31", "Jan 2", "Jan 3")
    assert _dates(text, today=date(2027, 1, 2)) == [
        date(2026, 12, 31),
        date(2027, 1, 2),  # on the run date
        date(2026, 1, 3),  # never after it
    ]
    assert _dates(text) == [None, None, None]


def test_february_29() -> None:
    assert _dates(_page("Mar 1", "Feb 29"), today=date(2027, 3, 5)) == [date(2024, 2, 29)]
    assert _dates(_page("Feb 29", "Feb 28"), today=date(2027, 3, 5)) == [date(2024, 2, 28)]


@pytest.mark.parametrize(
    "mtime",
    [
        datetime(1999, 12, 31, 23, 59),
        datetime(2025, 11, 20, 8),
        datetime(2027, 1, 5, 12),
        datetime(2038, 6, 1),
    ],
)
def test_the_same_file_gives_the_same_dates_whatever_its_mtime(
    tmp_path: Path, mtime: datetime
) -> None:
    expected = {name: [p.published for p in _read(name)] for name in COUNTS}
    for name in COUNTS:
        shutil.copy(PAGES / name, tmp_path)
        os.utime(tmp_path / name, (mtime.timestamp(), mtime.timestamp()))
    source = build_source(
        {"kind": "text-dump", "path": "."}, config_dir=tmp_path, where="t.toml: sources[1]"
    )
    with HttpClient() as http:
        ctx = FetchContext(today=date(2026, 11, 22), http=http, state=MemoryState())
        pages = list(source.fetch(ctx))
    assert len(pages) == 5 and all(page.error is None for page in pages)
    for page in pages:
        assert [p.published for p in page.papers] == expected[Path(page.where).name]
    # And the dates are the page's: 001 ("Nov 20", printed years up to 2024) is of 2025.
    critique = next(
        p for page in pages for p in page.papers if p.title.startswith("Critique-Coder")
    )
    assert critique.published == date(2025, 9, 26)


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


# --- pages cut off mid-paper --------------------------------------------------------------

TODAY = date(2026, 11, 22)
SHAPE_A = {"001_4dfcb878200cfaa6.txt", "002_f9597088ed713dd6.txt"}
# Where an abstract may end: a sentence end (maybe in brackets or quotes), or a link.
ABSTRACT_END = re.compile(r"[.!?…][)\]}\"'”’]*$|\S*://\S*$|www\.\S*$|\S+\.[a-z]{2,3}(?:/\S*)?$")


def _outcome(data: bytes) -> tuple[list[Paper], SourceError | None]:
    """What a cut page gives; its year is fixed, as fewer printed years may date it earlier."""
    try:
        return parse_text_dump(data, "cut.txt", year=2025), None
    except PartialPageError as exc:
        return list(exc.papers), exc
    except SourceError as exc:
        return [], exc


def _starts(text: bytes, papers: list[Paper]) -> list[int]:
    """The byte offset where each paper's title begins."""
    offsets, at = [], 0
    for paper in papers:
        at = text.index(paper.title.encode(), at)
        offsets.append(at)
        at += len(paper.title.encode())
    return offsets


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_a_page_cut_anywhere_never_keeps_a_cut_paper_silently(name: str) -> None:
    """A real page cut at every 3rd byte of its last papers, and every 211th before.

    The page is first shortened to its first 14 papers (a complete page in itself), so
    each cut parses fast. Whatever the cut, the papers kept are the page's own, whole;
    the cut paper is dropped and named in the error. The one silent case is a shape
    without author/date lines (A', B, or a cut inside the first paper) cut right after a
    sentence or inside a link of the last abstract: nothing tells that from a full stop.
    """
    data = (PAGES / name).read_bytes()
    starts = _starts(data, _read(name, today=TODAY))
    page = data[: starts[14]].rstrip(b"\n")
    full, error = _outcome(page)
    assert len(full) == 14 and error is None
    offsets = [*range(0, starts[11], 211), *range(starts[11], len(page) + 1, 3)]
    silent = flagged = 0
    for cut in offsets:
        papers, error = _outcome(page[:cut])
        if not papers:
            continue  # cut in the header or the first paper: nothing kept
        last, whole = papers[-1], full[len(papers) - 1]
        assert papers[:-1] == full[: len(papers) - 1], cut
        assert last.title == whole.title, cut  # its date may differ: `May 4` of `May 4, 2024`
        if error is not None:
            assert last.abstract == whole.abstract, cut
            flagged += 1
            assert str(error).startswith("cut.txt: page ends mid-paper; last paper '"), cut
            assert str(error).endswith("' dropped") and "\n" not in str(error)
            dropped = full[len(papers)].title
            assert dropped.startswith(error.reason.split("'")[1].rstrip("…")), cut
        elif last.abstract != whole.abstract:
            silent += 1
            assert name not in SHAPE_A or len(papers) == 1, cut
            assert whole.abstract.startswith(last.abstract), cut
            assert ABSTRACT_END.search(last.abstract), (cut, last.abstract[-60:])
    assert flagged > 0.9 * len(offsets)
    assert silent < 0.05 * len(offsets)


@pytest.mark.parametrize(
    ("name", "cut_after", "dropped"),
    [
        ("001_4dfcb878200cfaa6.txt", "May 4, 20", "Stationary Representations"),  # in the date
        ("001_4dfcb878200cfaa6.txt", "  • 4 auth", "Stationary Representations"),  # authors
        ("001_4dfcb878200cfaa6.txt", "miccunifi/iamcl2r.\n\n  • 4 authors\n·", "Stationary"),
        ("002_f9597088ed713dd6.txt", "We also present a valu", "N2N Learning"),  # abstract
        ("004_056f41bc6489462d.txt", "DefSent+ is also competitive in", "DefSent+"),
        ("000_0d1b150f40e33697.txt", "FILM: How can Few-Shot", "FILM: How can Few-Shot"),  # title
        ("003_a148c10466c9a820.txt", "while being simple to", "Task Adaptive Parameter"),
    ],
)
def test_cut_in_the_last_paper_drops_it_and_says_so(
    name: str, cut_after: str, dropped: str
) -> None:
    data = (PAGES / name).read_bytes()
    at = data.rindex(cut_after.encode()) + len(cut_after.encode())
    with pytest.raises(PartialPageError) as caught:
        parse_text_dump(data[:at], "inbox/p.txt", today=TODAY)
    error = caught.value
    assert len(error.papers) == COUNTS[name] - 1 and error.skipped == 1
    expected = parse_text_dump(data, "inbox/p.txt", today=TODAY)
    assert error.papers == tuple(expected[:-1])
    assert str(error).startswith(f"inbox/p.txt: page ends mid-paper; last paper '{dropped}")


def test_cut_inside_a_character_is_a_cut_not_an_encoding_error() -> None:
    data = (PAGES / "002_f9597088ed713dd6.txt").read_bytes()
    at = data.rindex("·".encode()) + 1  # the middle byte pair of "·" (0xC2 0xB7)
    with pytest.raises(PartialPageError, match="page ends mid-paper; last paper 'N2N"):
        parse_text_dump(data[:at], "p.txt")


def test_no_complete_page_is_reported_as_cut() -> None:
    for name in COUNTS:
        assert len(_read(name, today=TODAY)) == COUNTS[name]  # raises if it were


def test_no_shared_page_is_reported_as_cut() -> None:
    for path in sorted(shared_data("pages").glob("*.txt")):
        parse_text_dump(path.read_bytes(), str(path), today=TODAY)


def test_cut_page_in_a_folder_keeps_its_papers_and_reports_the_file(tmp_path: Path) -> None:
    data = (PAGES / "002_f9597088ed713dd6.txt").read_bytes()
    (tmp_path / "cut.txt").write_bytes(data[: data.rindex(b"We also present a valu")])
    source = build_source(
        {"kind": "text-dump", "path": "."}, config_dir=tmp_path, where="t.toml: sources[1]"
    )
    with HttpClient() as http:
        (page,) = source.fetch(FetchContext(today=TODAY, http=http, state=MemoryState()))
    assert len(page.papers) == 34 and page.memo is not None
    assert str(page.error).startswith(f"{tmp_path / 'cut.txt'}: page ends mid-paper; last paper")
