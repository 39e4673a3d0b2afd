"""Papers to rows and back, and how a paper seen twice is merged. Pure: no queries here
except finding the stored rows one batch of papers may match."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.models import Paper, paper_key
from digest.store.schema import papers_table

# Paper fields stored as columns of the same name; merged field by field on update.
_PAPER_FIELDS = tuple(f.name for f in fields(Paper))
_TUPLE_FIELDS = {"authors", "ai_keywords", "categories"}
# arXiv announce types of a revision: it updates a known paper and is never offered as new.
REVISIONS = frozenset({"replace", "replace-cross"})


def is_revision(paper: Paper) -> bool:
    """Known only from arXiv revisions (`replace`, `replace-cross`): stored, never offered."""
    return paper.announce in REVISIONS


def dedupe(papers: Iterable[Paper]) -> list[Paper]:
    """Merge duplicates within one batch (the same paper on two pages) in input order."""
    by_key: dict[str, Paper] = {}
    title_to_key: dict[str, str] = {}
    for paper in papers:
        key = paper.key
        if key not in by_key and paper.title_key in title_to_key:
            other = title_to_key[paper.title_key]
            if not (paper.arxiv_id and by_key[other].arxiv_id):
                key = other
        if key in by_key:
            combined = merge(by_key[key], paper)
            if combined.key != key:
                del by_key[key]
                key = combined.key
            by_key[key] = combined
        else:
            by_key[key] = paper
        title_to_key[paper.title_key] = key
    return list(by_key.values())


def merge(old: Paper, new: Paper) -> Paper:
    """Newer non-empty values win; nothing known is forgotten."""
    changes: dict[str, object] = {}
    if (announce := _announce(old.announce, new.announce)) != old.announce:
        changes["announce"] = announce
    for name in _PAPER_FIELDS:
        if name == "announce":
            continue
        value = getattr(new, name)
        if value is None or value == "" or value == ():
            continue
        if name == "source" and old.source:
            continue
        if getattr(old, name) != value:
            changes[name] = value
    return replace(old, **changes) if changes else old  # type: ignore[arg-type]


def _announce(old: str | None, new: str | None) -> str | None:
    """How a paper stays announced: a revision never makes a known paper a revision, and
    any other sighting (arXiv `new`/`cross`, or a Hugging Face list: None) of a paper known
    only from revisions makes it an ordinary paper. Otherwise the first announce type stays."""
    if old in REVISIONS:
        return new
    if old is None and new is not None and new not in REVISIONS:
        return new
    return old


def find_existing(conn: Connection, batch: Sequence[Paper]) -> _Existing:
    c = papers_table.c
    ids = [p.arxiv_id for p in batch if p.arxiv_id]
    titles = [p.title_key for p in batch]
    rows = conn.execute(
        sa.select(papers_table).where(sa.or_(c.arxiv_id.in_(ids), c.title_key.in_(titles)))
    ).all()
    existing = _Existing()
    # Rows with an id first: for a title match they are the better-known paper.
    for row in sorted(rows, key=lambda r: (r.arxiv_id is None, r.id)):
        if row.arxiv_id:
            existing.by_id[row.arxiv_id] = row
        existing.by_title.setdefault(row.title_key, []).append(row)
    return existing


@dataclass(slots=True)
class _Existing:
    by_id: dict[str, sa.Row[Any]] = field(default_factory=dict)
    by_title: dict[str, list[sa.Row[Any]]] = field(default_factory=dict)

    def match(self, paper: Paper) -> sa.Row[Any] | None:
        """The stored row this paper is: same id; else same title, unless both have ids."""
        if paper.arxiv_id and paper.arxiv_id in self.by_id:
            return self.by_id[paper.arxiv_id]
        for row in self.by_title.get(paper.title_key, ()):
            if not (paper.arxiv_id and row.arxiv_id):
                return row
        return None


def paper_values(paper: Paper, now: datetime) -> dict[str, object]:
    values: dict[str, object] = {}
    for name in _PAPER_FIELDS:
        value = getattr(paper, name)
        values[name] = list(value) if name in _TUPLE_FIELDS else value
    values["title_key"] = paper.title_key
    values["first_seen_at"] = now
    values["updated_at"] = now
    return values


def row_to_paper(row: sa.Row[Any]) -> Paper:
    data = row._mapping
    kwargs: dict[str, object] = {}
    for name in _PAPER_FIELDS:
        value = data[name]
        if name in _TUPLE_FIELDS:
            value = tuple(value or ())
        elif isinstance(value, datetime) and name in {"published", "list_date"}:
            value = value.date()
        kwargs[name] = value
    return Paper(**kwargs)  # type: ignore[arg-type]


def row_key(row: sa.Row[Any] | sa.Row[Any, Any]) -> str:
    data = row._mapping
    return paper_key(data["arxiv_id"], data["title_key"])
