"""Parse arXiv feeds (`rss.arxiv.org/rss/<cat>+<cat>`) into Papers (pure); the `arxiv` source.

One item is one announcement: `new` (submitted to the category), `cross` (cross-listed
into it), `replace` or `replace-cross` (a new version of an earlier paper). Every item
becomes a Paper with its announce type in `Paper.announce`; the store decides what is
new (revisions never are). Ids lose their version (`2509.13338v2` → `2509.13338`), so a
paper is the same paper in every version and on Hugging Face.

Weekend and holiday feeds are a channel with no item: no papers, no error. A feed with
some unreadable items keeps the others and reports one `PartialPageError`; so does a
feed cut off or broken part-way (the whole items before the break are kept). Anything
that is neither an RSS channel nor an Atom feed is one `SourceError`.

The same parser reads Atom: rss.arxiv.org's `/atom/` feeds and the answers of arXiv's
API (`export.arxiv.org/api/query`), so saved API answers back-fill a date range through a
`path` source; an API entry is a `new` paper of that range, in its latest version.

The source asks for one combined feed per fetch, conditionally, at most one request per
`min_delay` seconds to arXiv (3 s by default, as arXiv asks of automated clients).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

from lxml import etree

from digest.errors import ConfigError, SourceError
from digest.models import Paper, normalise_arxiv_id
from digest.sources.base import (
    FetchContext,
    PageResult,
    PartialPageError,
    SourceOptions,
    kept_papers,
)
from digest.sources.files import FileSource
from digest.sources.retrieve import FileRead, HttpClient, fetch_page

DEFAULT_BASE_URL = "https://rss.arxiv.org"
DEFAULT_MIN_DELAY = 3.0  # seconds between two requests to arXiv
FEED_LIMIT = 2000  # arXiv's cap on the items of one (combined) feed
ANNOUNCE_TYPES = frozenset({"new", "cross", "replace", "replace-cross"})
NEW_TYPES = frozenset({"new", "cross"})
ATOM = "{http://www.w3.org/2005/Atom}"
ATOM_FEED = ATOM + "feed"
ATOM_ENTRY = ATOM + "entry"

# `cs.CL`, `math.AG`, `astro-ph.GA`, `cond-mat.mes-hall`, `physics.acc-ph`, `q-bio.NC`, or a
# whole archive: `cs`, `hep-th`, `quant-ph`.
_CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]+(?:-[A-Za-z]+)*)?")
_DESCRIPTION = re.compile(
    r"\s*arXiv:(?P<id>\S+)\s+Announce\s+Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:)?", re.IGNORECASE
)
_VERSION = re.compile(r"v(\d+)$")
_GUID_PREFIX = "oai:arxiv.org:"


# What subscribers write in `categories` / `exclude_categories` for Hugging Face's list.
HUGGING_FACE = "huggingface"


def is_arxiv_category(text: str) -> bool:
    """Whether `text` is written as an arXiv category or archive (`cs.CL`, `hep-th`, `cs`)."""
    return len(text) <= 40 and _CATEGORY.fullmatch(text) is not None


class BadItem(ValueError):
    """One item of a feed cannot be read; the parser turns it into a SourceError."""


def parse_arxiv_feed(data: bytes | str, where: str) -> list[Paper]:
    """Read one arXiv feed: RSS 2.0 (`rss.arxiv.org/rss/...`), or Atom (`rss.arxiv.org/atom/...`
    and the API's `export.arxiv.org/api/query` answers), as served or saved.

    An API entry has no announce type: it is a paper of the range asked for (`new`), in
    its latest version.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        root = etree.fromstring(raw, _xml_parser())
    except etree.XMLSyntaxError as exc:
        return _parse_broken(raw, where, exc)
    except (etree.LxmlError, ValueError) as exc:
        raise SourceError(where, f"not XML ({_first_line(exc)})") from None
    container, item_tag = _container(root, where)
    items = [child for child in container if child.tag == item_tag]
    papers = _papers(items, _feed_day(container), where)
    if item_tag == "item" and len(items) >= FEED_LIMIT:
        reason = (
            f"{len(items)} items, arXiv's limit for one feed: later papers may be missing; "
            "split the categories over several sources"
        )
        raise PartialPageError(where, reason, papers, skipped=0)
    return papers


def _xml_parser() -> etree.XMLParser:
    # No DTD, no entities, no network: a feed is data, never instructions to the parser.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True
    )


def _container(root: etree._Element, where: str) -> tuple[etree._Element, str]:
    """The element holding the papers and their tag: an RSS channel's `item`s or an Atom
    feed's `entry`s."""
    tag = root.tag if isinstance(root.tag, str) else "?"
    if tag == ATOM_FEED:
        return root, ATOM_ENTRY
    if tag != "rss":
        name = tag.rpartition("}")[2]
        raise SourceError(where, f"not an arXiv feed (RSS or Atom): the document is <{name}>")
    channel = root.find("channel")
    if channel is None:
        raise SourceError(where, "RSS without a <channel>")
    return channel, "item"


def _feed_day(container: etree._Element) -> date | None:
    """The day of the whole feed, for items without a date of their own."""
    if container.tag == ATOM_FEED:
        return _iso_day(container.findtext(ATOM + "updated"))
    return _date(container.findtext("pubDate"))


def _parse_broken(raw: bytes, where: str, error: etree.XMLSyntaxError) -> list[Paper]:
    """The whole items before the point where the XML breaks, reported as a partial page."""
    if not raw.strip():
        raise SourceError(where, "empty: no XML at all")
    line, column = error.position if error.position else (0, 0)
    cut = _at_end(raw, line, column)
    problem = (
        "feed ends mid-way (cut off?)" if cut else f"not well-formed XML at line {line}"
    ) + f": {_first_line(error)}"
    pull = etree.XMLPullParser(
        events=("start", "end"), resolve_entities=False, no_network=True, load_dtd=False
    )
    try:
        pull.feed(raw)
        pull.close()
    except (etree.LxmlError, ValueError):
        pass  # the error above: keep what was read before it
    root: etree._Element | None = None
    items: list[etree._Element] = []
    for event, element in pull.read_events():
        if root is None:
            root = element
        elif event == "end" and element.tag in ("item", ATOM_ENTRY):
            items.append(element)
    if root is None or not items:
        raise SourceError(where, problem)
    container, _ = _container(root, where)
    papers = _papers(items, _feed_day(container), where, strict=False)
    kept = f"{len(papers)} whole item(s) before it kept" if papers else "no whole item"
    if not papers:
        raise SourceError(where, f"{problem}; {kept}")
    raise PartialPageError(where, f"{problem}; {kept}", papers, skipped=1)


def _at_end(raw: bytes, line: int, column: int) -> bool:
    """Whether the parser stopped at the end of the data (a cut body), not inside it."""
    lines = raw.split(b"\n")
    if line != len(lines):
        return False
    return column >= len(lines[-1].decode("utf-8", "replace"))


def _papers(
    items: Iterable[etree._Element], feed_day: date | None, where: str, *, strict: bool = True
) -> list[Paper]:
    """Items to Papers, keeping the good ones when some are bad (strict: report them)."""
    papers: list[Paper] = []
    problems: list[str] = []
    count = 0
    for index, item in enumerate(items):
        count += 1
        try:
            papers.append(paper_from_item(item, feed_day, where))
        except BadItem as exc:
            problems.append(f"item {index}: {exc}")
    return kept_papers(where, papers, problems if strict else (), count)


def paper_from_item(item: etree._Element, feed_day: date | None, where: str) -> Paper:
    """One RSS `<item>` or Atom `<entry>`: id (no version), title, abstract, authors,
    categories (primary first), announce type, date."""
    if item.tag == ATOM_ENTRY:
        return _paper_from_entry(item, feed_day, where)
    title = guid = link = description = announce = creator = pub_date = None
    categories: list[str] = []
    for child in item:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        name = tag.rpartition("}")[2]
        text = child.text
        if name == "title":
            title = text
        elif name == "guid":
            guid = text
        elif name == "link":
            link = text
        elif name == "description":
            description = text
        elif name == "category":
            if text and (category := text.strip()) and category not in categories:
                categories.append(category)
        elif name == "announce_type":
            announce = text
        elif name == "creator":
            creator = text
        elif name == "pubDate":
            pub_date = text
    abstract, described_id, described_type = _description(description)
    found = _full_id(guid, link, described_id)
    if found is None:
        raise BadItem(f"no arXiv id (guid {_short(guid)}, link {_short(link)})")
    full_id, arxiv_id = found
    clean_title = _clean(title)
    if not clean_title:
        raise BadItem(f"paper {arxiv_id} has no title")
    kind = _announce(announce or described_type, full_id)
    authors = _authors(creator)
    day = _date(pub_date) or feed_day
    return Paper(
        title=clean_title,
        abstract=_clean(abstract) or "",
        arxiv_id=arxiv_id,
        authors=authors,
        author_count=len(authors) if authors else None,
        published=day if kind in NEW_TYPES else None,  # a revision's date is not the paper's
        categories=tuple(categories),
        announce=kind,
        source=where,
    )


def _paper_from_entry(entry: etree._Element, feed_day: date | None, where: str) -> Paper:
    ident = title = summary = announce = published = updated = None
    primary: str | None = None
    categories: list[str] = []
    authors: list[str] = []
    for child in entry:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        name = tag.rpartition("}")[2]
        if name == "id":
            ident = child.text
        elif name == "title":
            title = child.text
        elif name == "summary":
            summary = child.text
        elif name == "author":
            if author := _clean(child.findtext(ATOM + "name")):
                authors.append(author)
        elif name == "category":
            if (term := (child.get("term") or "").strip()) and term not in categories:
                categories.append(term)
        elif name == "primary_category":
            primary = (child.get("term") or "").strip() or None
        elif name == "announce_type":
            announce = child.text
        elif name == "published":
            published = child.text
        elif name == "updated":
            updated = child.text
    abstract, described_id, described_type = _description(summary)
    found = _full_id(ident, None, described_id)
    if found is None:
        raise BadItem(f"no arXiv id (id {_short(ident)})")
    arxiv_id = found[1]
    clean_title = _clean(title)
    if not clean_title:
        raise BadItem(f"paper {arxiv_id} has no title")
    kind = (announce or described_type or "new").strip().lower()
    if kind not in ANNOUNCE_TYPES:
        raise BadItem(f"unknown announce type {_short(kind)}")
    if primary:
        categories = [primary, *(c for c in categories if c != primary)]
    day = _iso_day(published) or _iso_day(updated) or feed_day
    return Paper(
        title=clean_title,
        abstract=_clean(abstract) or "",
        arxiv_id=arxiv_id,
        authors=tuple(authors),
        author_count=len(authors) if authors else None,
        published=day if kind in NEW_TYPES else None,
        categories=tuple(categories),
        announce=kind,
        source=where,
    )


def _description(text: str | None) -> tuple[str | None, str | None, str | None]:
    """(abstract, id with version, announce type) of `arXiv:ID Announce Type: T Abstract: ...`."""
    if not text:
        return None, None, None
    match = _DESCRIPTION.match(text)
    if match is None:
        return text.strip().removeprefix("Abstract:"), None, None
    return text[match.end() :], match["id"], match["type"]


def _full_id(guid: str | None, link: str | None, described: str | None) -> tuple[str, str] | None:
    """The id as the item writes it (with its version when given), and without version."""
    if guid:
        text = guid.strip()
        if text[: len(_GUID_PREFIX)].casefold() == _GUID_PREFIX:
            text = text[len(_GUID_PREFIX) :]
        if ident := normalise_arxiv_id(text):
            return text, ident
    for candidate in (described, link):
        if candidate and (ident := normalise_arxiv_id(candidate)):
            return candidate.strip(), ident
    return None


def _announce(text: str | None, full_id: str) -> str:
    """The announce type; an item without one is new in version 1, else a revision."""
    if text is None or not text.strip():
        version = _VERSION.search(full_id.removesuffix(".pdf"))
        return "replace" if version and int(version[1]) > 1 else "new"
    kind = text.strip().lower()
    if kind not in ANNOUNCE_TYPES:
        raise BadItem(f"unknown announce type {_short(text)}")
    return kind


def _authors(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(name for part in " ".join(text.split()).split(",") if (name := part.strip()))


@lru_cache(maxsize=64)  # every item of a feed carries the same few dates
def _date(text: str | None) -> date | None:
    """The calendar day of an RFC 822 date as written (`Thu, 18 Sep 2025 00:00:00 -0400`)."""
    if not text:
        return None
    try:
        return parsedate_to_datetime(text.strip()).date()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _iso_day(text: str | None) -> date | None:
    """The calendar day of an ISO timestamp as written (`2025-10-16T17:59:37Z`)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip()).date()
    except ValueError:
        return None


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    return " ".join(text.split()) or None


def _short(text: str | None) -> str:
    return repr(text.strip()[:40]) if text else "missing"


def _first_line(exc: BaseException) -> str:
    text = exc.msg if isinstance(exc, etree.XMLSyntaxError) and exc.msg else str(exc)
    return text.splitlines()[0][:160] if text else type(exc).__name__


# --- the source ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArxivOptions(SourceOptions):
    """A validated `kind = "arxiv"` table: the common options plus arXiv's own."""

    categories: tuple[str, ...] = ()
    min_delay: float = DEFAULT_MIN_DELAY


def make_source(options: SourceOptions) -> FileSource | ArxivFeedSource:
    """Saved feeds (`.xml`, `.rss`, `.atom`) when `path` is set, else the live combined feed."""
    if options.path is not None:
        return FileSource(options.name, options.path, (".xml", ".rss", ".atom"), _parse_file)
    if not isinstance(options, ArxivOptions) or not options.categories:
        raise ConfigError(f"{options.name}: kind 'arxiv' needs 'categories' or a 'path'")
    url = f"{options.base_url.rstrip('/')}/rss/{'+'.join(options.categories)}"
    return ArxivFeedSource(options.name, url, options.min_delay)


def _parse_file(read: FileRead, today: date) -> list[Paper]:
    return parse_arxiv_feed(read.content, str(read.path))


@dataclass(frozen=True, slots=True)
class ArxivFeedSource:
    """`GET {base_url}/rss/<cat>+<cat>`: one conditional request per fetch.

    arXiv rebuilds the feed once a day (midnight US Eastern), so a second fetch the same
    day is answered 304 when arXiv sends validators, and otherwise re-reads the same
    items (which the store already has: nothing new).
    """

    name: str
    url: str
    min_delay: float = DEFAULT_MIN_DELAY

    def fetch(self, ctx: FetchContext) -> Iterator[PageResult]:
        with _paced(ctx.http, self.min_delay):
            page = fetch_page(ctx, self.url, lambda content: parse_arxiv_feed(content, self.url))
        ctx.report(self.url, 1, 1)
        yield page


@contextmanager
def _paced(http: HttpClient, seconds: float) -> Iterator[None]:
    """arXiv's pacing for the requests made inside: the client's polite delay between two
    requests to one host, raised to `seconds` (and put back after)."""
    saved = http.min_delay
    http.min_delay = max(saved, seconds)
    try:
        yield
    finally:
        http.min_delay = saved
