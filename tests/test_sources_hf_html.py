"""huggingface.co/papers HTML: the data-props JSON and the rendered cards give the same papers."""

from __future__ import annotations

from datetime import date

import pytest
from http_server import HTML_DAY

from digest.errors import SourceError
from digest.models import Paper
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
