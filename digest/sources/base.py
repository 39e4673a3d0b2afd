"""The values and protocols every source shares: results, context, and the memory between runs.

Kept apart from `digest.sources.__init__` so the per-kind modules can import them
without importing the registry that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from digest.errors import SourceError
from digest.models import FileFingerprint, Paper, SourceMemo, UrlMemo, Validators

if TYPE_CHECKING:
    from digest.sources.retrieve import HttpClient


class PartialPageError(SourceError):
    """Some items of a page were unreadable; `papers` holds the ones that were read."""

    def __init__(self, where: str, reason: str, papers: Sequence[Paper], *, skipped: int) -> None:
        super().__init__(where, reason)
        self.papers = tuple(papers)
        self.skipped = skipped


def kept_papers(
    where: str, papers: list[Paper], problems: Sequence[str], items: int
) -> list[Paper]:
    """A page's papers when `problems` (one per unreadable item of `items`) may be
    non-empty: all of them, or the readable ones in a PartialPageError, or SourceError
    when none was readable."""
    if problems and not papers:
        raise SourceError(where, f"no readable paper in {items} items; {problems[0]}")
    if problems:
        reason = f"{len(problems)} of {items} items skipped; {problems[0]}"
        raise PartialPageError(where, reason, papers, skipped=len(problems))
    return papers


class SourceMemory(Protocol):
    """What earlier runs remembered, read-only: which files were read and what URLs answered.

    Implemented by the store (database) and by `MemoryState` (tests). Paths are the
    absolute file paths as strings; URLs are full URLs with their query. A source never
    writes here: each page carries its own memo (`PageResult.memo`), which the caller
    stores together with the page's papers.
    """

    def file_fingerprint(self, path: str) -> FileFingerprint | None: ...

    def http_validators(self, url: str) -> Validators | None: ...


class MemoryState:
    """A `SourceMemory` in a dict, for tests and one-off runs.

    `remember(memo)` is what the pipeline does with a page's memo once the page is
    stored; a test that needs run-to-run memory calls it for each page it handled.
    """

    def __init__(self) -> None:
        self.files: dict[str, FileFingerprint] = {}
        self.http: dict[str, Validators] = {}

    def file_fingerprint(self, path: str) -> FileFingerprint | None:
        return self.files.get(path)

    def http_validators(self, url: str) -> Validators | None:
        return self.http.get(url)

    def remember(self, memo: SourceMemo | None) -> None:
        if isinstance(memo, FileFingerprint):
            self.files[memo.path] = memo
        elif isinstance(memo, UrlMemo):
            self.http[memo.url] = memo.validators


@dataclass(frozen=True, slots=True)
class PageResult:
    """What one page (file or URL) gave.

    - papers and no error: a good page;
    - papers and an error: some items were unreadable, or the page ends mid-paper
      (`PartialPageError`); store the papers anyway and report the error;
    - no papers and an error: the page failed;
    - `not_modified`: nothing new to read (not an error): the server answered 304, or a
      file was touched or copied with the same bytes (its new fingerprint is the memo).

    `memo` is what to remember of the page: a file's `FileFingerprint` (also for a file
    that failed to parse: the same bytes would fail again, a changed file is re-read), or
    a URL's `UrlMemo` after a 200 with an ETag or Last-Modified whose body parsed (a body
    that did not parse is not remembered, so the next run asks for it again).
    """

    where: str
    papers: tuple[Paper, ...] = ()
    error: SourceError | None = None
    not_modified: bool = False
    # What to remember of this page (file fingerprint, URL validators); the caller stores
    # it in the same transaction as the papers, so a crash never skips an unstored page.
    memo: SourceMemo | None = None


# Called once per finished page: (where, pages done, pages planned so far or None).
Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True, slots=True)
class FetchContext:
    """Everything a source may use during one run; the clock is `today`, never `date.today()`."""

    today: date  # the list date treated as today (replay/backfill pass an older one)
    http: HttpClient
    state: SourceMemory  # read-only; what a page teaches goes in its `PageResult.memo`
    progress: Progress | None = None
    # If given (timezone-aware), a web source takes its list date as `now` in its own
    # `timezone` instead of `today`; leave it out when replaying a past day.
    now: datetime | None = None

    def today_in(self, zone: tzinfo) -> date:
        if self.now is not None and self.now.tzinfo is not None:
            return self.now.astimezone(zone).date()
        return self.today

    def report(self, where: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(where, done, total)


class Source(Protocol):
    """A configured place papers come from.

    `fetch` yields one `PageResult` per page and never raises for a broken page. It only
    reads `ctx.state`; what it learns about a page (file fingerprint, ETag) travels in
    the page's `memo`, and the caller stores it in the same transaction as the page's
    papers, so a run that dies before storing a page reads it again next time.
    """

    @property
    def name(self) -> str: ...

    def fetch(self, ctx: FetchContext) -> Iterator[PageResult]: ...


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """A validated `[[sources]]` table, as the per-kind factories receive it."""

    kind: str
    name: str
    path: Path | None = None  # absolute: a file, a folder or a glob pattern
    base_url: str = "https://huggingface.co"
    lookback_days: int = 3
    timezone: tzinfo = UTC
    query: str | None = None
