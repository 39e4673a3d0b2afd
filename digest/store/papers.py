"""The seen-set: every paper ever read, known by its arXiv id or else its normalised title."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.models import Paper, split_key
from digest.store.db import chunks
from digest.store.outbox import NEW_SUBSCRIBER
from digest.store.rows import (
    REVISIONS,
    dedupe,
    find_existing,
    is_revision,
    merge,
    paper_values,
    row_to_paper,
)
from digest.store.schema import (
    messages_table,
    papers_table,
    released_papers_table,
    reservations_table,
    subscribers_table,
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one page of papers did to the seen-set."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    new_keys: tuple[str, ...] = ()


@dataclass(slots=True)
class Candidates:
    """Papers a digest may draw on, and for each subscriber which of them are eligible."""

    papers: list[Paper] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)  # paper key -> row id
    eligible: dict[str, set[str]] = field(default_factory=dict)  # email -> paper keys
    seen_through: dict[str, int] = field(default_factory=dict)  # email -> highest id considered
    seen_from: dict[str, int] = field(default_factory=dict)  # email -> highest id before these
    versions: dict[str, int] = field(default_factory=dict)  # email -> plan_version read


def ingest(conn: Connection, papers: Iterable[Paper], now: datetime) -> IngestResult:
    """Add new papers and update known ones (upvotes, comments, AI fields, a late id).

    A title-only paper that matches a paper with an id becomes that paper, and vice versa.
    An arXiv revision (`replace`, `replace-cross`) is never new: it updates a known paper,
    and an unknown one (announced before this database existed) is stored as a revision,
    counted as updated and never offered (see `candidates`), until another source lists
    it as a paper of its own (then it counts as new).
    """
    new = updated = unchanged = 0
    new_keys: list[str] = []
    for batch in chunks(dedupe(papers)):
        existing = find_existing(conn, batch)
        for paper in batch:
            row = existing.match(paper)
            if row is None:
                conn.execute(papers_table.insert().values(paper_values(paper, now)))
                if is_revision(paper):
                    updated += 1
                    continue
                new += 1
                new_keys.append(paper.key)
                continue
            stored = row_to_paper(row)
            combined = merge(stored, paper)
            if combined == stored:
                unchanged += 1
                continue
            values = paper_values(combined, now)
            del values["first_seen_at"]
            conn.execute(papers_table.update().where(papers_table.c.id == row.id).values(values))
            if is_revision(stored) and not is_revision(combined):
                new += 1
                new_keys.append(combined.key)
                continue
            updated += 1
    return IngestResult(new, updated, unchanged, tuple(new_keys))


def by_keys(conn: Connection, keys: Sequence[str]) -> list[Paper]:
    parts = [split_key(k) for k in keys]
    ids = [i for i, _ in parts if i]
    titles = [t for _, t in parts if t]
    c = papers_table.c
    rows = conn.execute(
        sa.select(papers_table).where(sa.or_(c.arxiv_id.in_(ids), c.title_key.in_(titles)))
    ).all()
    return [row_to_paper(r) for r in rows]


def _offered() -> sa.ColumnElement[bool]:
    """A digest may offer the paper: it is not known only from arXiv revisions."""
    c = papers_table.c
    return sa.or_(c.announce.is_(None), c.announce.not_in(sorted(REVISIONS)))


def seen_since(conn: Connection, since: datetime) -> list[Paper]:
    """Papers first seen since then that a digest may offer (not arXiv revisions only)."""
    c = papers_table.c
    query = sa.select(papers_table).where(c.first_seen_at >= since, _offered()).order_by(c.id)
    return [row_to_paper(r) for r in conn.execute(query)]


def by_ids(conn: Connection, ids: Sequence[int]) -> dict[int, Paper]:
    found: dict[int, Paper] = {}
    for chunk in chunks(list(ids)):
        for row in conn.execute(sa.select(papers_table).where(papers_table.c.id.in_(chunk))):
            found[row.id] = row_to_paper(row)
    return found


def count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(papers_table)).scalar_one())


def candidates(
    conn: Connection, emails: Sequence[str], now: datetime, new_subscriber_days: int
) -> Candidates:
    """The papers not yet considered for each subscriber.

    A subscriber has considered every paper up to its `seen_through` row id; one never
    seen before starts with the papers first seen in the last `new_subscriber_days`.
    Papers known only from arXiv revisions are never offered.
    """
    c = papers_table.c
    wanted = set(emails)
    known: dict[str, tuple[int, int]] = {}
    released: dict[str, set[int]] = {}
    t, rel = subscribers_table, released_papers_table.c
    for chunk in chunks(list(wanted)):
        query = sa.select(t.c.email, t.c.seen_through, t.c.plan_version).where(t.c.email.in_(chunk))
        known.update((r.email, (r.seen_through, r.plan_version)) for r in conn.execute(query))
        query = sa.select(rel.subscriber, rel.paper_id).where(rel.subscriber.in_(chunk))
        for r in conn.execute(query):
            released.setdefault(r.subscriber, set()).add(r.paper_id)
    floor_id = first_id_since(conn, now - timedelta(days=new_subscriber_days))
    starts = {e: known[e][0] if e in known else floor_id - 1 for e in emails}
    if not starts:
        return Candidates()
    extra = sorted(set().union(*released.values())) if released else []
    newer = c.id > min(starts.values())
    rows = conn.execute(
        sa.select(papers_table)
        .where(_offered(), sa.or_(newer, c.id.in_(extra)) if extra else newer)
        .order_by(c.id)
    ).all()
    reserved: dict[str, set[int]] = {}
    rv = reservations_table.c
    for chunk in chunks([r.id for r in rows]):
        taken = sa.select(rv.subscriber, rv.paper_id).where(rv.paper_id.in_(chunk))
        for s in conn.execute(taken):
            if s.subscriber in wanted:
                reserved.setdefault(s.subscriber, set()).add(s.paper_id)
    result = Candidates()
    keys = {}
    for row in rows:
        paper = row_to_paper(row)
        result.papers.append(paper)
        result.ids[paper.key] = row.id
        keys[row.id] = paper.key
    top = max((r.id for r in rows), default=0)
    # Most subscribers share a starting point and have nothing reserved or released among
    # these papers: they share one set (memory grows with distinct starts, not people).
    after = {start: {r.id for r in rows if r.id > start} for start in set(starts.values())}
    shared = {start: {keys[i] for i in ids} for start, ids in after.items()}
    for email in emails:
        result.seen_through[email] = max(top, starts[email])
        result.seen_from[email] = starts[email]
        result.versions[email] = known[email][1] if email in known else NEW_SUBSCRIBER
        own_released, own_reserved = released.get(email), reserved.get(email)
        if not own_released and not own_reserved:
            result.eligible[email] = shared[starts[email]]
        else:
            ids = (after[starts[email]] | (own_released or set())) - (own_reserved or set())
            result.eligible[email] = {keys[i] for i in ids}
    return result


def drawn_on(
    conn: Connection, email: str, after_id: int, through_id: int, before: datetime
) -> dict[int, Paper]:
    """The papers (by row id) a digest planned at `before` could draw on for `email`:
    ids in (after_id, through_id], no arXiv revision, none an earlier digest reserved.

    Papers released by a failed digest and offered again are not among them."""
    c, rv, m = papers_table.c, reservations_table.c, messages_table.c
    earlier = (
        sa.select(rv.paper_id)
        .join(messages_table, m.id == rv.message_id)
        .where(rv.subscriber == email, m.created_at < before)
    )
    query = (
        sa.select(papers_table)
        .where(
            c.id > after_id,
            c.id <= through_id,
            _offered(),
            c.id.not_in(earlier),
        )
        .order_by(c.id)
    )
    return {row.id: row_to_paper(row) for row in conn.execute(query)}


def first_id_since(conn: Connection, since: datetime) -> int:
    c = papers_table.c
    first = conn.execute(sa.select(sa.func.min(c.id)).where(c.first_seen_at >= since)).scalar()
    if first is not None:
        return int(first)
    last = conn.execute(sa.select(sa.func.max(c.id))).scalar()
    return int(last or 0) + 1
