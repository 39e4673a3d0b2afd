"""Parse huggingface.co/papers HTML (`?date=` lists and `?q=` searches) into Papers (pure).

The page embeds its data twice: as JSON in the `data-props` attribute of the
`DailyPapers` Svelte island (complete: abstracts, authors, dates), and as rendered
cards (`<article>`: id, title, upvotes, author count, comments; no abstract). The
JSON is preferred; the cards are the fallback for layouts whose island we do not
recognise, so a site redesign degrades the data instead of losing the day.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from typing import Literal
from urllib.parse import urlencode

from bs4 import BeautifulSoup, Tag

from digest.errors import SourceError
from digest.models import Paper
from digest.sources.base import FetchContext, PageResult, PartialPageError, SourceOptions
from digest.sources.files import FileSource, date_in_name
from digest.sources.hf_api import iso_day, papers_from_items
from digest.sources.retrieve import FileRead, fetch_page

Method = Literal["auto", "props", "cards"]

_PAPER_HREF = re.compile(r"^/papers/(?P<id>[A-Za-z0-9][\w.\-]{0,63})(?:$|[?#])")
_AUTHORS = re.compile(r"(\d{1,6})\s+authors?\b")
_INT = re.compile(r"\d{1,9}")
_ITEM_LIST_KEYS = ("dailyPapers", "papers", "results", "items")
_MAX_PROPS_DEPTH = 4
_CLOSING_HTML = re.compile(r"</html\s*>", re.IGNORECASE)


def parse_papers_html(
    data: bytes | str,
    where: str,
    *,
    list_date: date | None = None,
    method: Method = "auto",
) -> list[Paper]:
    """Read one saved or fetched papers page.

    `method` forces one of the two readings (tests check that they agree);
    `list_date` overrides the date found in the page.

    A page cut off before its end (no closing `</html>`) is still read when its papers
    data is whole; read from its cards, a last card cut off is dropped with a
    `PartialPageError` naming it; with neither, the page fails saying it was cut off,
    rather than passing for an empty day.
    """
    try:
        soup = BeautifulSoup(data, "lxml")
    except Exception as exc:  # bs4/lxml raise assorted types on hostile input
        raise SourceError(where, f"not HTML ({type(exc).__name__})") from None
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if method in ("auto", "props"):
        items, page_date = _island_items(soup, where)
        if items is not None:
            return papers_from_items(items, where, list_date=list_date or page_date)
        if method == "props":
            raise SourceError(where, "no papers data in the page's data-props")
    cards = [card for card in soup.find_all("article") if isinstance(card, Tag)]
    read = [_card(card, where, list_date, soup) for card in cards]
    papers = [paper for paper in read if paper is not None]
    if _CLOSING_HTML.search(text) is None and (papers or _is_papers_page(soup)):
        if not papers:
            raise SourceError(where, "page ends before its papers (cut off: no closing </html>)")
        if text.count("<article") > text.count("</article>"):  # the last card is cut
            name = repr(papers.pop().title) if read[-1] is not None else "(cut before its title)"
            reason = f"page ends mid-paper; last paper {name} dropped"
            raise PartialPageError(where, reason, papers, skipped=1)
        reason = f"page is cut off after paper {papers[-1].title!r} (no closing </html>)"
        raise PartialPageError(where, reason, papers, skipped=0)
    if papers or _is_papers_page(soup):
        return papers
    raise SourceError(where, "not a Hugging Face papers page (no papers data and no paper cards)")


def _island_items(soup: BeautifulSoup, where: str) -> tuple[Sequence[object] | None, date | None]:
    """The item list of the papers island, and its date, if the page has one."""
    islands = list(soup.select("[data-props]"))
    islands.sort(key=lambda tag: tag.get("data-target") != "DailyPapers")
    for island in islands:
        raw = island.get("data-props")
        if not isinstance(raw, str):
            continue
        try:
            props = json.loads(raw)
        except (ValueError, RecursionError):
            if island.get("data-target") == "DailyPapers":
                raise SourceError(where, "DailyPapers data-props is not valid JSON") from None
            continue
        items = _find_items(props, _MAX_PROPS_DEPTH)
        if items is not None:
            page_date = iso_day(props.get("date")) if isinstance(props, Mapping) else None
            return items, page_date
    return None, None


def _find_items(value: object, depth: int) -> Sequence[object] | None:
    """The first list of paper-like objects under a known key, searched shallowly."""
    if depth <= 0 or not isinstance(value, Mapping):
        return None
    for key in _ITEM_LIST_KEYS:
        items = value.get(key)
        if isinstance(items, list) and (not items or any(_paper_like(item) for item in items)):
            return items
    for child in value.values():
        if isinstance(child, Mapping) and (found := _find_items(child, depth - 1)) is not None:
            return found
    return None


def _paper_like(item: object) -> bool:
    if not isinstance(item, Mapping):
        return False
    return isinstance(item.get("paper"), Mapping) or ("id" in item and "title" in item)


def _card(card: Tag, where: str, list_date: date | None, soup: BeautifulSoup) -> Paper | None:
    link = card.select_one('h3 a[href^="/papers/"]')
    href = link.get("href") if link else None
    match = _PAPER_HREF.match(href) if isinstance(href, str) else None
    if link is None or match is None:
        return None
    title = " ".join(link.get_text(" ").split())
    if not title:
        return None
    return Paper(
        title=title,
        arxiv_id=match["id"],
        author_count=_author_count(card),
        list_date=list_date or _page_date(soup),
        upvotes=_upvotes(card),
        comments=_comments(card),
        submitter=_submitter(card),
        source=where,
    )


def _upvotes(card: Tag) -> int | None:
    for box in card.select(".leading-none"):
        text = box.get_text(strip=True)
        if _INT.fullmatch(text):
            return int(text)
    return None


def _author_count(card: Tag) -> int | None:
    match = _AUTHORS.search(card.get_text(" "))
    return int(match[1]) if match else None


def _comments(card: Tag) -> int | None:
    link = card.select_one('a[href$="#community"]')
    if link is None:
        return None
    text = link.get_text(strip=True)
    return int(text) if _INT.fullmatch(text) else 0


def _submitter(card: Tag) -> str | None:
    for tag in card.find_all(string=re.compile("Submitted by")):
        parent = tag.parent
        if parent is None:
            continue
        name = " ".join(parent.get_text(" ").replace("Submitted by", "", 1).split())
        if name:
            return name
    return None


def _page_date(soup: BeautifulSoup) -> date | None:
    time = soup.find("time", attrs={"datetime": True})
    return iso_day(time.get("datetime")) if isinstance(time, Tag) else None


def _is_papers_page(soup: BeautifulSoup) -> bool:
    """An empty day or search is still a papers page: say so instead of failing."""
    body = soup.body
    classes = body.get("class") if body else None
    if isinstance(classes, list) and any("PapersPage" in name for name in classes):
        return True
    url = soup.find("meta", attrs={"property": "og:url"})
    content = url.get("content") if isinstance(url, Tag) else None
    return isinstance(content, str) and content.startswith("https://huggingface.co/papers")


# --- the source ------------------------------------------------------------------------


def make_source(options: SourceOptions) -> FileSource | HtmlPageSource:
    """Saved pages when `path` is set; else `/papers?q=query`, or `/papers?date=D` per day."""
    if options.path is not None:
        return FileSource(options.name, options.path, (".html", ".htm"), _parse_file)
    return HtmlPageSource(
        options.name,
        options.base_url.rstrip("/"),
        options.lookback_days,
        options.timezone,
        options.query,
    )


def _parse_file(read: FileRead, today: date) -> list[Paper]:
    return parse_papers_html(read.content, str(read.path), list_date=date_in_name(read.path))


@dataclass(frozen=True, slots=True)
class HtmlPageSource:
    name: str
    base_url: str
    lookback_days: int
    timezone: tzinfo
    query: str | None = None

    def fetch(self, ctx: FetchContext) -> Iterator[PageResult]:
        pages: list[tuple[str, date | None]]
        if self.query is not None:
            pages = [(f"{self.base_url}/papers?{urlencode({'q': self.query})}", None)]
        else:
            today = ctx.today_in(self.timezone)
            days = [today - timedelta(days=back) for back in range(self.lookback_days, -1, -1)]
            pages = [(f"{self.base_url}/papers?date={day.isoformat()}", day) for day in days]
        for done, (url, day) in enumerate(pages, start=1):

            def parse(content: bytes, url: str = url, day: date | None = day) -> list[Paper]:
                return parse_papers_html(content, url, list_date=day)

            page = fetch_page(ctx, url, parse)
            ctx.report(url, done, len(pages))
            yield page
