"""A source made of saved pages on disk: one file, a folder or a glob, read with a pure parser.

A folder or glob is an inbox: each run reads only the files that are new or changed
since the last run, so a page dropped into it is picked up once. A single named file
is read on every run (the store ignores what it already has).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from digest.errors import SourceError
from digest.models import FileFingerprint, Paper
from digest.sources.base import FetchContext, PageResult, PartialPageError
from digest.sources.retrieve import FileRead, list_files, read_file

_DATE_IN_NAME = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)")

# A pure parser of one saved page; the date is the run's `FetchContext.today`.
FileParser = Callable[[FileRead, date], list[Paper]]


@dataclass(frozen=True, slots=True)
class FileSource:
    name: str
    path: Path
    suffixes: tuple[str, ...]  # what a folder's pages end with
    parse: FileParser

    def fetch(self, ctx: FetchContext) -> Iterator[PageResult]:
        files, is_collection = list_files(self.path, self.suffixes)
        if not is_collection and not self.path.exists():
            # build_source refuses a missing path; this is a file deleted since then.
            yield PageResult(str(self.path), error=SourceError(str(self.path), "no such file"))
            return
        known_of = (
            {str(p): ctx.state.file_fingerprint(str(p)) for p in files} if is_collection else {}
        )
        pending = [p for p in files if not is_collection or _maybe_changed(p, known_of[str(p)])]
        for done, path in enumerate(pending, start=1):
            page = self._page(path, known_of.get(str(path)), ctx.today)
            ctx.report(str(path), done, len(pending))
            yield page

    def _page(self, path: Path, known: FileFingerprint | None, today: date) -> PageResult:
        """One file as a page, carrying the fingerprint to remember with it.

        An unreadable file has no memo (the next run tries again); a file whose bytes
        are unchanged (touched or copied) is `not_modified` with its new fingerprint; a
        page that failed to parse is remembered too: the same bytes would fail again,
        and a changed file is read again.
        """
        try:
            read = read_file(path)
        except SourceError as exc:
            return PageResult(str(path), error=exc)
        if known is not None and known.sha256 == read.fingerprint.sha256:
            return PageResult(str(path), not_modified=True, memo=read.fingerprint)
        return parse_page(self.parse, read, str(path), today)


def _maybe_changed(path: Path, known: FileFingerprint | None) -> bool:
    """Size and mtime first: unchanged files are not even opened."""
    if known is None:
        return True
    try:
        info = path.stat()
    except OSError:
        return True  # let the read report it
    return info.st_size != known.size or info.st_mtime_ns != known.mtime_ns


def date_in_name(path: Path) -> date | None:
    """`2024-08-01.json`, `papers_2024-08-01.html` → the list date they were saved for."""
    match = _DATE_IN_NAME.search(path.name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match[0])
    except ValueError:
        return None


def parse_page(parse: FileParser, read: FileRead, where: str, today: date) -> PageResult:
    """Run a parser; its SourceError becomes the page's error, partial pages keep their papers.

    Whatever the outcome, the page carries the file's fingerprint as its memo.
    """
    memo = read.fingerprint
    try:
        return PageResult(where, tuple(parse(read, today)), memo=memo)
    except PartialPageError as exc:
        return PageResult(where, exc.papers, exc, memo=memo)
    except SourceError as exc:
        return PageResult(where, error=exc, memo=memo)
