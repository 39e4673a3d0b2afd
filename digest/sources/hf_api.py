"""Parse Hugging Face `api/daily_papers` JSON into Papers (pure, no I/O).

The schema grew over the years (see the data README): only the arXiv id, title,
abstract, authors, dates and upvotes are always there, so every other field is read
only when present and of the expected type.

A malformed *item* does not lose the rest of the page: the good items are kept and
the page reports one `PartialPageError` (a `SourceError` carrying those papers)
that names the first bad item and how many were skipped. A saved page cut off inside
an item keeps the whole items before it and reports the dropped one the same way. A
page that is not an array of items at all (e.g. the broken upstream files whose items are Python
`repr()` strings) is one plain `SourceError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta, tzinfo

from digest.errors import SourceError
from digest.models import Paper
from digest.sources.base import (
    FetchContext,
    PageResult,
    PartialPageError,
    SourceOptions,
    kept_papers,
)
from digest.sources.files import FileSource, date_in_name
from digest.sources.retrieve import FileRead, fetch_page

_ARXIV_ID = re.compile(r"[A-Za-z0-9][\w.\-/]{0,63}")


class BadItem(ValueError):
    """One item of a page cannot be read; the parser turns it into a SourceError."""


def parse_daily_papers(
    data: bytes | str, where: str, *, list_date: date | None = None
) -> list[Paper]:
    """Read one `daily_papers` response.

    `list_date` is the Daily Papers date the response was requested for (the
    `date=` parameter or the file name); when unknown, each paper's
    `submittedOnDailyAt` day is used if present.
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        problem = f"not JSON ({_short(exc)})"
        cut = _items_before_cut(data)
        if cut is None:
            raise SourceError(where, problem) from None
        items, rest = cut
        if not items:
            raise SourceError(where, f"{problem}: the page ends mid-way (cut off?)") from None
        papers = papers_from_items(items, where, list_date=list_date)
        reason = f"page ends mid-paper; last paper {_name_in(rest)} dropped"
        raise PartialPageError(where, reason, papers, skipped=1) from None
    if not isinstance(document, list):
        raise SourceError(where, f"expected a JSON array of papers, found {_describe(document)}")
    return papers_from_items(document, where, list_date=list_date)


def papers_from_items(
    items: Sequence[object], where: str, *, list_date: date | None
) -> list[Paper]:
    """Turn API items into Papers, keeping the good ones when some are bad."""
    papers: list[Paper] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            papers.append(paper_from_item(item, where, list_date=list_date))
        except BadItem as exc:
            problems.append(f"item {index}: {exc}")
        except RecursionError:
            problems.append(f"item {index}: nested too deeply")
    return kept_papers(where, papers, problems, len(items))


_STRING_FIELD = r'"{}"\s*:\s*"((?:[^"\\]|\\.)*)"'
_TITLE_IN_JSON = re.compile(_STRING_FIELD.format("title"))
_ID_IN_JSON = re.compile(_STRING_FIELD.format("id"))
_LITERALS = ("true", "false", "null")


def _items_before_cut(data: bytes | str) -> tuple[list[object], str] | None:
    """The whole items of a JSON array cut off inside an item, and the cut-off rest.

    None when the text is broken in any other way than ending too early.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if exc.reason != "unexpected end of data":
                return None
            text = data[: exc.start].decode("utf-8-sig")
    else:
        text = data
    decoder = json.JSONDecoder()
    index = _skip_space(text, 0)
    if not text.startswith("[", index):
        return None
    items: list[object] = []
    index = _skip_space(text, index + 1)
    while index < len(text):
        try:
            item, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            return (items, text[index:]) if _runs_off_the_end(text, exc) else None
        except RecursionError:
            return None
        items.append(item)
        index = _skip_space(text, end)
        if index < len(text) and text[index] != ",":
            return None  # a closing "]" would have parsed: broken, not cut
        index = _skip_space(text, index + 1)
    return items, ""


def _name_in(rest: str) -> str:
    """The cut-off item as a person would name it: its title, else its arXiv id."""
    for pattern in (_TITLE_IN_JSON, _ID_IN_JSON):
        if found := pattern.search(rest):
            try:
                return repr(" ".join(json.loads(f'"{found[1]}"').split()))
            except ValueError:
                continue
    return "(cut before its id)"


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _runs_off_the_end(text: str, exc: json.JSONDecodeError) -> bool:
    """Whether a decoding error is the text ending, not a mistake in it."""
    rest = text[exc.pos :].rstrip()
    return (
        not rest
        or exc.msg.startswith("Unterminated string")
        or any(literal.startswith(rest) for literal in _LITERALS)
    )


def paper_from_item(item: object, where: str, *, list_date: date | None) -> Paper:
    """One API item (`{"paper": {...}, "numComments": ...}`) or a bare paper object."""
    if not isinstance(item, Mapping):
        raise BadItem(f"expected an object, found {_describe(item)}")
    paper = item.get("paper", item)
    if not isinstance(paper, Mapping):
        raise BadItem(f"'paper' is {_describe(paper)}, not an object")
    arxiv_id = paper.get("id")
    if not isinstance(arxiv_id, str) or not _ARXIV_ID.fullmatch(arxiv_id.strip()):
        raise BadItem(f"missing or invalid paper.id ({_describe(arxiv_id)})")
    title = _text(paper.get("title")) or _text(item.get("title"))
    if not title:
        raise BadItem(f"paper {arxiv_id.strip()} has no title")
    authors = _authors(paper.get("authors"))
    submitted_on = iso_day(paper.get("submittedOnDailyAt"))
    return Paper(
        title=title,
        abstract=_text(paper.get("summary")) or _text(item.get("summary")) or "",
        arxiv_id=arxiv_id.strip(),
        authors=authors,
        author_count=len(authors) if authors else None,
        published=iso_day(paper.get("publishedAt")),
        list_date=list_date or submitted_on,
        upvotes=_count(paper.get("upvotes")),
        comments=_count(item.get("numComments")),
        submitter=_user(item.get("submittedBy")) or _user(paper.get("submittedOnDailyBy")),
        ai_summary=_text(paper.get("ai_summary")),
        ai_keywords=_keywords(paper.get("ai_keywords")),
        github_repo=_text(paper.get("githubRepo")),
        github_stars=_count(paper.get("githubStars")),
        project_page=_text(paper.get("projectPage")),
        organization=_organization(paper.get("organization"))
        or _organization(item.get("organization")),
        source=where,
    )


def _text(value: object) -> str | None:
    """Collapse arXiv's hard wraps (`"...Multimodal\\n  Models"`) and stray spaces."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def iso_day(value: object) -> date | None:
    """The UTC calendar day of an ISO timestamp like `2024-05-24T17:34:15.000Z`."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _authors(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    names = []
    for author in value:
        name = _text(author.get("name")) if isinstance(author, Mapping) else _text(author)
        if name:
            names.append(name)
    return tuple(names)


def _keywords(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(keyword for item in value if (keyword := _text(item)))


def _user(value: object) -> str | None:
    """The Hugging Face handle (`akhaliq`), as the site shows under "Submitted by"."""
    if not isinstance(value, Mapping):
        return None
    return _text(value.get("name")) or _text(value.get("user")) or _text(value.get("fullname"))


def _organization(value: object) -> str | None:
    if not isinstance(value, Mapping):
        return None
    return _text(value.get("fullname")) or _text(value.get("name"))


def _describe(value: object) -> str:
    if isinstance(value, Mapping):
        keys = ", ".join(str(key) for key in list(value)[:5])
        return f"an object with keys {keys}" if keys else "an empty object"
    if isinstance(value, str):
        return f"a string {value[:40]!r}"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


# --- the source ------------------------------------------------------------------------

PAGE_SIZE = 50  # the API's default `limit`: a day with exactly this many items may go on
MAX_PAGES = 20  # a safety stop, far above any real day


def make_source(options: SourceOptions) -> FileSource | ApiDaySource:
    """Saved responses when `path` is set, else the live API for the last few days."""
    if options.path is not None:
        return FileSource(options.name, options.path, (".json",), _parse_file)
    return ApiDaySource(
        options.name, options.base_url.rstrip("/"), options.lookback_days, options.timezone
    )


def _parse_file(read: FileRead, today: date) -> list[Paper]:
    return parse_daily_papers(read.content, str(read.path), list_date=date_in_name(read.path))


@dataclass(frozen=True, slots=True)
class ApiDaySource:
    """`GET {base_url}/api/daily_papers?date=D` for today and `lookback_days` days before.

    Pagination: the API returns at most 50 items by default, so a day with exactly
    50 items is continued with `&p=1`, `&p=2`... until a short page or a page with no
    new paper. The page parameter's numbering is not documented: if `p=1` repeats the
    first page, numbering is taken to start at 1 and `p=2` is asked next.
    A 304 on the first page ends that day (later pages were read when it last changed).
    """

    name: str
    base_url: str
    lookback_days: int
    timezone: tzinfo

    def fetch(self, ctx: FetchContext) -> Iterator[PageResult]:
        today = ctx.today_in(self.timezone)
        days = [today - timedelta(days=back) for back in range(self.lookback_days, -1, -1)]
        done = 0
        for day in days:
            for page in self._day(ctx, day):
                done += 1
                ctx.report(page.where, done, len(days))
                yield page

    def _day(self, ctx: FetchContext, day: date) -> Iterator[PageResult]:
        seen: set[str] = set()
        number = 0
        while number < MAX_PAGES:
            url = f"{self.base_url}/api/daily_papers?date={day.isoformat()}"
            if number:
                url += f"&p={number}"
            items = 0

            def parse(content: bytes, url: str = url) -> list[Paper]:
                nonlocal items
                try:
                    papers = parse_daily_papers(content, url, list_date=day)
                except PartialPageError as exc:
                    items = len(exc.papers) + exc.skipped
                    raise
                items = len(papers)
                return papers

            page = fetch_page(ctx, url, parse)
            if page.error is not None and _is_404(page.error):
                if number:
                    return  # past the last page
                reason = f"no Daily Papers list for {day} (HTTP 404)"
                page = PageResult(url, error=SourceError(url, reason))
            fresh = tuple(p for p in page.papers if p.arxiv_id not in seen)
            repeated = bool(page.papers) and not fresh
            if repeated and number == 1:
                number = 2  # pages are numbered from 1: p=1 was the first page again
                continue
            seen.update(p.arxiv_id for p in fresh if p.arxiv_id)
            yield replace(page, papers=fresh)
            if page.not_modified or (page.error is not None and not page.papers):
                return
            if repeated or items < PAGE_SIZE:
                return
            number += 1


def _is_404(error: SourceError) -> bool:
    return error.reason.startswith("HTTP 404")
