"""Each parser raises nothing but SourceError, on arbitrary input and on damaged real pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fuzzing import FUZZ, damaged
from http_server import API_DAYS, HTML_DAY, PAGES
from hypothesis import given
from hypothesis import strategies as st

from digest.errors import SourceError
from digest.models import Paper
from digest.sources.hf_api import parse_daily_papers
from digest.sources.hf_html import parse_papers_html
from digest.sources.text_dump import parse_text_dump

Parser = Callable[[bytes, str], list[Paper]]

PARSERS: dict[str, Parser] = {
    "text-dump": lambda data, where: parse_text_dump(data, where, year=2026),
    "hf-api": lambda data, where: parse_daily_papers(data, where),
    "hf-html": lambda data, where: parse_papers_html(data, where),
    "hf-html-cards": lambda data, where: parse_papers_html(data, where, method="cards"),
}


@cache
def _samples() -> dict[str, bytes]:
    """Small real inputs so that each mutated example stays fast."""
    return {
        "text-dump": _head(PAGES / "001_4dfcb878200cfaa6.txt", 60),
        "text-dump-b": _head(PAGES / "000_0d1b150f40e33697.txt", 12),
        "hf-api": (API_DAYS / "2025-07-07.json").read_bytes(),
        "hf-html": _small_html(),
    }


def _head(path: Path, lines: int) -> bytes:
    return b"\n".join(path.read_bytes().split(b"\n")[:lines])


def _small_html() -> bytes:
    """The recorded page cut to two papers (in the props and as cards), authors trimmed."""
    soup = BeautifulSoup(HTML_DAY.read_bytes(), "lxml")
    island = soup.select_one('[data-target="DailyPapers"]')
    assert island is not None
    props = json.loads(str(island["data-props"]))
    props["dailyPapers"] = props["dailyPapers"][:2]
    for item in props["dailyPapers"]:
        item["paper"]["authors"] = item["paper"]["authors"][:3]
    island["data-props"] = json.dumps(props)
    for article in soup.find_all("article")[2:]:
        article.decompose()
    for tag in soup.find_all(["script", "style", "svg"]):
        tag.decompose()
    return str(soup).encode()


def _check(parser: Parser, data: bytes) -> None:
    try:
        papers = parser(data, "fuzz-input")
    except SourceError as exc:
        assert exc.where == "fuzz-input"
        return
    assert all(isinstance(p, Paper) and p.title for p in papers)


@pytest.mark.parametrize("kind", sorted(PARSERS))
@FUZZ
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes(kind: str, data: bytes) -> None:
    _check(PARSERS[kind], data)


@pytest.mark.parametrize("kind", sorted(PARSERS))
@FUZZ
@given(text=st.text(max_size=1000))
def test_arbitrary_text(kind: str, text: str) -> None:
    _check(PARSERS[kind], text.encode("utf-8", "surrogatepass"))


# What a damaged page gains: line breaks, separators and markup cut loose.
TEXT_SPLICES = (b"\n", b"\n\n", b"\xc2\xb7\n", b'"', b"{", b"]", b"<a>", b"\x00")


@pytest.mark.parametrize(
    ("kind", "sample"),
    [
        ("text-dump", "text-dump"),
        ("text-dump", "text-dump-b"),
        ("hf-api", "hf-api"),
        ("hf-html", "hf-html"),
    ],
)
@FUZZ
@given(st.data())
def test_mutated_real_inputs(kind: str, sample: str, data: st.DataObject) -> None:
    _check(PARSERS[kind], data.draw(damaged(_samples()[sample], TEXT_SPLICES)))


def test_samples_are_real_pages() -> None:
    """The fuzz seeds parse cleanly, so mutations start from a valid input."""
    assert len(PARSERS["text-dump"](_samples()["text-dump"], "s")) > 5
    assert len(PARSERS["text-dump"](_samples()["text-dump-b"], "s")) == 5
    assert len(PARSERS["hf-api"](_samples()["hf-api"], "s")) == 1
    assert len(PARSERS["hf-html"](_samples()["hf-html"], "s")) == 2
    assert len(_samples()["hf-html"]) < 30_000
