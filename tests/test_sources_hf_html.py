"""huggingface.co/papers HTML: the data-props JSON and the rendered cards give the same papers."""

from __future__ import annotations

from datetime import date

import pytest
from http_server import HTML_DAY, shared_data

from digest.errors import SourceError
from digest.models import Paper
from digest.sources import PartialPageError
from digest.sources.hf_html import Method, parse_papers_html

LLAMA = "2407.21783"


def _read(method: Method = "auto", data: bytes | None = None) -> list[Paper]:
    return parse_papers_html(data or HTML_DAY.read_bytes(), str(HTML_DAY), method=method)


def _summary(papers: list[Paper]) -> list[tuple[object, ...]]:
    return [
        (p.arxiv_id, p.title, p.upvotes, p.comments, p.author_count, p.submitter, p.list_date)
        for p in papers
    ]


def test_props_and_cards_give_the_same_13_papers() -> None:
    props, cards = _read("props"), _read("cards")
    assert len(props) == len(cards) == 13
    assert _summary(props) == _summary(cards)
    # Both include the two papers the earlier API snapshot did not have.
    assert {"2407.20229", "2404.01300"} <= {p.arxiv_id for p in cards}
    assert {p.list_date for p in cards} == {date(2024, 8, 1)}


def test_props_carry_what_cards_do_not() -> None:
    props = {p.arxiv_id: p for p in _read("props")}
    llama = props[LLAMA]
    assert (llama.title, llama.upvotes, llama.comments) == ("The Llama 3 Herd of Models", 94, 5)
    assert llama.author_count == len(llama.authors) == 533
    assert llama.abstract.startswith("Modern artificial intelligence (AI) systems")
    assert "\n" not in llama.abstract
    assert llama.published == date(2024, 7, 31)
    cards = {p.arxiv_id: p for p in _read("cards")}
    assert cards[LLAMA].abstract == "" and cards[LLAMA].authors == ()


def test_auto_prefers_props_and_falls_back_to_cards() -> None:
    assert _read() == _read("props")
    html = HTML_DAY.read_bytes().replace(b'data-target="DailyPapers"', b'data-target="Renamed"')
    html = html.replace(b"dailyPapers", b"somethingElse")
    fallback = _read(data=html)
    assert _summary(fallback) == _summary(_read("cards"))
    with pytest.raises(SourceError, match="no papers data"):
        _read("props", data=html)


def test_broken_props_json_is_an_error_naming_the_page() -> None:
    html = HTML_DAY.read_bytes().replace(
        b"&quot;dailyPapers&quot;:[", b"&quot;dailyPapers&quot;:[[", 1
    )
    with pytest.raises(SourceError) as caught:
        _read(data=html)
    assert caught.value.where == str(HTML_DAY)


def test_empty_day_page_is_no_papers_not_an_error() -> None:
    html = (
        b'<html><head><meta property="og:url" content="https://huggingface.co/papers"></head>'
        b'<body class="DailyPapersPage"><div data-target="DailyPapers" '
        b'data-props="{&quot;date&quot;:&quot;2024-08-03T00:00:00.000Z&quot;,'
        b'&quot;dailyPapers&quot;:[]}"></div></body></html>'
    )
    assert parse_papers_html(html, "p.html") == []


@pytest.mark.parametrize(
    "data", [b"", b"<html><body><h1>Hello</h1></body></html>", b"\x00\xff" * 50, b"[]"]
)
def test_not_a_papers_page(data: bytes) -> None:
    with pytest.raises(SourceError) as caught:
        parse_papers_html(data, "https://example.org/page")
    assert caught.value.where == "https://example.org/page"


def test_fixture_is_the_shared_page() -> None:
    shared = shared_data("data/hf-papers-html/papers_2024-08-01.html")
    assert HTML_DAY.read_bytes() == shared.read_bytes()


@pytest.mark.parametrize("method", ["auto", "cards"])
def test_a_page_cut_anywhere_never_passes_for_a_shorter_day(method: Method) -> None:
    """Cut at 90 points: the papers kept are whole, and a loss is always reported."""
    data = HTML_DAY.read_bytes()
    full = _read(method)
    for cut in range(0, len(data), len(data) // 90):
        try:
            papers = parse_papers_html(data[:cut], str(HTML_DAY), method=method)
        except PartialPageError as exc:
            assert list(exc.papers) == full[: len(exc.papers)], cut
            assert "page ends mid-paper; last paper " in exc.reason or "cut off" in exc.reason
            continue
        except SourceError as exc:
            assert "cut off" in exc.reason or "not a Hugging Face papers page" in exc.reason, cut
            continue
        assert papers == full, cut  # the papers data was whole before the cut


def test_cut_inside_the_last_card_drops_it_and_says_so() -> None:
    data = HTML_DAY.read_bytes()
    title_at = data.index(b"<h3", data.rindex(b"<article"))
    with pytest.raises(PartialPageError) as caught:
        parse_papers_html(data[: title_at + 300], "p.html", method="cards")
    last = _read("cards")[-1].title
    assert str(caught.value) == f"p.html: page ends mid-paper; last paper {last!r} dropped"
    assert len(caught.value.papers) == 12
    # Cut before the card shows its title: the twelve whole cards stay, the page says so.
    with pytest.raises(PartialPageError, match=r"last paper \(cut before its title\)") as caught:
        parse_papers_html(data[: title_at - 10], "p.html", method="cards")
    assert len(caught.value.papers) == 12
