"""Parse saved plain-text dumps of Hugging Face papers pages into Papers (pure, no I/O).

A dump is what a browser's "select all, copy" gives for `huggingface.co/papers?q=...`.
Three shapes are known (see examples/pages/):

* A: blocks separated by blank lines. A header (`new`, the subscribe banner,
  `Subscribe`, `Daily Papers`, `byAK and the research community`, the page date
  `Nov 20`), then per paper a title block, an abstract block and an optional meta
  block: `  • N authors` (or an organisation line), `·`, `Mon D[, YYYY] [comments]`.
* A': like A without meta blocks.
* B: one line per item, no blank lines: banner lines, then `Subscribe` glued to the
  first title, then title line / abstract line alternately.

Dates without a year are dated from the page's own date, never from the file's
modification time; see `parse_text_dump`. A page cut off mid-paper loses its last paper
with an error saying so (`PartialPageError`) rather than storing a cut abstract.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from digest.errors import SourceError
from digest.models import Paper
from digest.sources.base import PartialPageError, SourceOptions
from digest.sources.files import FileSource
from digest.sources.retrieve import FileRead

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_DATE = re.compile(
    r"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?P<day>\d{1,2})"
    r"(?:, (?P<year>\d{4}))?(?: (?P<comments>\d{1,7}))?"
)
_AUTHORS = re.compile(r"•\s*(?P<count>\d{1,6}) authors?")
_BANNER = re.compile(r"Get trending papers in your email inbox.{0,40}")
_HEADER_LINES = frozenset({"new", "Subscribe", "Daily Papers", "byAK and the research community"})
_SEPARATOR = "·"
_BULLET = "•"
_SUBSCRIBE = "Subscribe"
# Titles on the site are short; a "title" this long means the title/abstract
# alternation is out of step (a paper without abstract), see `_pair`.
_MAX_TITLE = 400
# The banner must appear within the first lines; anything above it (a site menu
# copied along) is ignored.
_HEADER_SCAN = 40


@dataclass(frozen=True, slots=True)
class _Meta:
    author_count: int | None
    organization: str | None
    month_day: tuple[int, int] | None
    year: int | None
    comments: int | None


@dataclass(frozen=True, slots=True)
class _Block:
    line: int  # 1-based line number of the block's first line
    text: str
    meta: _Meta | None = None
    last_line: str = ""


def parse_text_dump(
    data: bytes | str,
    where: str,
    *,
    year: int | None = None,
    today: date | None = None,
    saved_on: date | None = None,
) -> list[Paper]:
    """Read one dump; `where` names it in errors and becomes `Paper.source`.

    A date printed without a year (`Jun 4`) takes the year that puts it closest before,
    or on, a reference day:

    * the page's own date (shape A's `Nov 20` under the header), in the year printed
      with it, else in `year` when given, else in the year after the latest year printed
      in the page (the site prints a year only for dates outside the page's own year),
      else in the year that puts it closest before or on `today`;
    * without a page date: the last day of `year` when given, else `today` (the run
      date, `FetchContext.today`).

    With none of these, dates without a year are left unknown (`published=None`) rather
    than guessed. The file's modification time is never used: a copy or a fresh clone
    gives the same dates. `saved_on` is an old name of `today`.

    A page that ends mid-paper (see `_unfinished`) gives the papers before the cut and
    raises `PartialPageError` naming the dropped one.
    """
    text = _decode(data, where)
    lines = text.splitlines()
    start, page_date, one_per_line = _skip_header(lines, where)
    blocks = list(_blocks(lines, start, one_per_line))
    raw = _pair(blocks, where)
    printed = [meta.year for _, _, meta in raw if meta and meta.year]
    reference = _reference_day(page_date, printed, year, today or saved_on)
    papers = [_paper(title, abstract, meta, reference, where) for title, abstract, meta in raw]
    if papers and _unfinished(blocks, raw[-1]):
        dropped = papers.pop()
        reason = f"page ends mid-paper; last paper {_clip(dropped.title)!r} dropped"
        if not papers:
            raise SourceError(where, reason)
        raise PartialPageError(where, reason, papers, skipped=1)
    return papers


def _decode(data: bytes | str, where: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":  # cut inside a character: see _unfinished
            return data[: exc.start].decode("utf-8-sig")
        raise SourceError(where, f"not UTF-8 text (byte {exc.start})") from None


_PageDate = tuple[int, int, int | None]  # month, day, year if printed


def _skip_header(lines: list[str], where: str) -> tuple[int, _PageDate | None, bool]:
    """Return the first content line's index, the page date (shape A) and whether
    the page has one item per line (shape B)."""
    seen_banner = seen_subscribe = False
    page_date: _PageDate | None = None
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not seen_banner:
            if _BANNER.fullmatch(line):
                seen_banner = True
            elif index >= _HEADER_SCAN:
                break
            continue
        if not line or _BANNER.fullmatch(line) or line in _HEADER_LINES:
            seen_subscribe = seen_subscribe or line == _SUBSCRIBE
            continue
        match = _DATE.fullmatch(line)
        if match and page_date is None and not match["comments"]:
            printed_year = int(match["year"]) if match["year"] else None
            page_date = (_MONTHS[match["month"]], int(match["day"]), printed_year)
            continue
        if not seen_subscribe and line.startswith(_SUBSCRIBE):
            # Shape B: the button text is glued to the first title.
            lines[index] = line[len(_SUBSCRIBE) :]
            return index, page_date, True
        return index, page_date, not _has_inner_blank(lines, index)
    if seen_banner:
        return len(lines), page_date, False
    raise SourceError(where, "not a saved Hugging Face papers page (no subscribe banner on top)")


def _has_inner_blank(lines: list[str], start: int) -> bool:
    """Blank lines between content lines (trailing ones don't count) mean shape A."""
    content = [index for index in range(start, len(lines)) if lines[index].strip()]
    return bool(content) and content[-1] - content[0] + 1 > len(content)


def _blocks(lines: list[str], start: int, one_per_line: bool) -> Iterator[_Block]:
    """Group lines into blocks: separated by blank lines, or one per line in shape B."""
    has_blank = not one_per_line
    current: list[str] = []
    first = start
    for index in range(start, len(lines) + 1):
        line = lines[index].strip() if index < len(lines) else ""
        if line and has_blank:
            if not current:
                first = index
            current.append(line)
            continue
        if line:  # shape B: every line is a block
            first, current = index, [line]
        if current:
            yield _block(current, first + 1)
            current = []


def _block(lines: list[str], line_no: int) -> _Block:
    meta = _meta(lines)
    return _Block(line_no, " ".join(lines), meta, lines[-1])


def _meta(lines: list[str]) -> _Meta | None:
    """Recognise the `authors · date` block that follows an abstract in shape A."""
    is_meta = (
        _SEPARATOR in lines
        or any(line.startswith(_BULLET) for line in lines)  # `• 12 authors`, maybe cut
        or any(_AUTHORS.fullmatch(line) for line in lines)
        or (len(lines) == 1 and _DATE.fullmatch(lines[0]) is not None)
    )
    if not is_meta:
        return None
    author_count: int | None = None
    organization: str | None = None
    month_day: tuple[int, int] | None = None
    year: int | None = None
    comments: int | None = None
    for line in lines:
        if line == _SEPARATOR:
            continue
        if authors := _AUTHORS.fullmatch(line):
            author_count = int(authors["count"])
        elif found := _DATE.fullmatch(line):
            month_day = (_MONTHS[found["month"]], int(found["day"]))
            year = int(found["year"]) if found["year"] else None
            comments = int(found["comments"]) if found["comments"] else None
        elif line.startswith(_BULLET):
            continue  # an author line cut short: not an organisation
        else:
            organization = _undouble(line)
    return _Meta(author_count, organization, month_day, year, comments)


def _undouble(name: str) -> str:
    """`TIGER-Lab TIGER-Lab` (avatar text + name) → `TIGER-Lab`."""
    half, sep, rest = name.partition(" ")
    if sep and half == rest:
        return half
    words = name.split(" ")
    if len(words) % 2 == 0 and words[: len(words) // 2] == words[len(words) // 2 :]:
        return " ".join(words[: len(words) // 2])
    return name


def _pair(blocks: list[_Block], where: str) -> list[tuple[_Block, str, _Meta | None]]:
    """Walk title, abstract, [meta] triples.

    Every paper on the site has an abstract, but a dump may miss one; then a long
    abstract lands where a title is expected. If the previous "abstract" is short
    enough to be a title, the previous paper is taken as abstract-less and the
    alternation resynchronises; otherwise the page is rejected rather than
    misread.
    """
    papers: list[tuple[_Block, str, _Meta | None]] = []
    index = 0
    while index < len(blocks):
        block = blocks[index]
        if block.meta is not None:
            if papers and papers[-1][2] is None:
                title, abstract, _ = papers[-1]
                papers[-1] = (title, abstract, block.meta)
                index += 1
                continue
            raise SourceError(where, "author/date line without a paper before it", block.line)
        if len(block.text) > _MAX_TITLE:
            previous = papers[-1] if papers else None
            if previous and previous[2] is None and 0 < len(previous[1]) <= _MAX_TITLE:
                papers[-1] = (previous[0], "", None)
                papers.append((_Block(block.line - 1, previous[1]), block.text, None))
                index += 1
                continue
            raise SourceError(
                where,
                f"expected a paper title, found a {len(block.text)}-character line",
                block.line,
            )
        abstract = ""
        index += 1
        if index < len(blocks) and blocks[index].meta is None:
            abstract = blocks[index].text
            index += 1
        papers.append((block, abstract, None))
    return papers


def _reference_day(
    page_date: _PageDate | None, printed: list[int], year: int | None, today: date | None
) -> date | None:
    """The day a date without a year is placed closest before (see `parse_text_dump`)."""
    if page_date is None:
        if year is not None:
            return date(year, 12, 31)
        return today
    month, day, page_year = page_date
    page_year = page_year or year or (max(printed) + 1 if printed else None)
    if page_year is not None:
        for candidate in range(page_year, page_year + 8):  # Feb 29: the next leap year
            if (found := _safe_date(candidate, month, day)) is not None:
                return found
        return None
    return _on_or_before(month, day, today) if today is not None else None


def _on_or_before(month: int, day: int, reference: date) -> date | None:
    """`month`/`day` in the year that puts it closest before, or on, `reference`."""
    for candidate in range(reference.year, reference.year - 8, -1):
        found = _safe_date(candidate, month, day)
        if found is not None and found <= reference:
            return found
    return None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _paper(
    title: _Block, abstract: str, meta: _Meta | None, reference: date | None, where: str
) -> Paper:
    published: date | None = None
    if meta and meta.month_day:
        if meta.year:
            published = _safe_date(meta.year, *meta.month_day)
        elif reference is not None:
            published = _on_or_before(*meta.month_day, reference)
    return Paper(
        title=title.text,
        abstract=abstract,
        author_count=meta.author_count if meta else None,
        published=published,
        comments=meta.comments if meta else None,
        organization=meta.organization if meta else None,
        source=where,
    )


# --- pages cut off mid-paper ------------------------------------------------------------

# How a complete abstract ends: a sentence end, maybe inside brackets or quotes...
_SENTENCE_END = re.compile(r"[.!?\u2026][)\]}\"'\u201d\u2019]*$")
# ...or a link ("Code: https://github.com/x/y", "available at AdapterHub.ml").
_LINK_END = re.compile(
    r"(?:\S*://\S+|www\.\S+|\S+\.(?:com|org|net|io|ml|ai|edu|dev|me|de)(?:/\S*)?)[)\]}]*$"
)


def _unfinished(blocks: list[_Block], last: tuple[_Block, str, _Meta | None]) -> bool:
    """Whether the page ends mid-paper: the text was cut off before its last entry ended.

    * Shape A (the page has author/date blocks): a finished page ends with an author/date
      block whose last line is the date. A last paper without that block is taken as cut
      (a dump whose real last paper lacks it, as a few papers do, loses that paper with
      the error, rather than risk a cut abstract).
    * Shapes A' and B (titles and abstracts only): the last paper needs its abstract, and
      the abstract must end like one: a sentence end or a link.

    Undetectable, and so read as complete: a cut inside the last date line that still
    reads as a date (`May 4` of `May 4, 2024`), and, in shapes A' and B (and in a shape-A
    page cut inside its first paper, before any author/date block), a cut right after a
    sentence or inside a link of the last abstract. Read as cut though whole: a last
    abstract that ends on a bare word (a keyword list), and the meta-less last paper above.
    """
    if any(block.meta is not None for block in blocks):
        final = blocks[-1]
        return final.meta is None or _DATE.fullmatch(final.last_line) is None
    _, abstract, _ = last
    return not abstract or not (_SENTENCE_END.search(abstract) or _LINK_END.search(abstract))


def _clip(title: str, width: int = 80) -> str:
    return title if len(title) <= width else title[: width - 1].rstrip() + "…"


def make_source(options: SourceOptions) -> FileSource:
    """Saved text dumps: a file, a folder of `.txt` pages, or a glob."""
    if options.path is None:
        raise ValueError("a text-dump source needs a path")  # build_source checks this first

    def parse(read: FileRead, today: date) -> list[Paper]:
        # Dated from the page itself, else the run date; never the file's mtime, which a
        # copy, a checkout or a backup restore changes.
        return parse_text_dump(read.content, str(read.path), today=today)

    return FileSource(options.name, options.path, (".txt",), parse)
