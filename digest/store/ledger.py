"""The delivery ledger: which papers went to whom, and how far each subscriber has read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.db import chunks
from digest.store.rows import row_key
from digest.store.schema import (
    deliveries_table,
    papers_table,
    sent_papers_table,
    subscribers_table,
)


def record_delivery(
    conn: Connection,
    email: str,
    paper_ids: Sequence[int],
    *,
    message_id: str,
    destination: str,
    seen_through: int,
    now: datetime,
) -> None:
    """The ledger rows and the subscriber's progress; (subscriber, paper) is unique."""
    delivery_id = conn.execute(
        deliveries_table.insert()
        .values(
            subscriber=email,
            sent_at=now,
            message_id=message_id,
            destination=destination,
            paper_count=len(paper_ids),
        )
        .returning(deliveries_table.c.id)
    ).scalar_one()
    if paper_ids:
        conn.execute(
            sent_papers_table.insert(),
            [{"subscriber": email, "paper_id": p, "delivery_id": delivery_id} for p in paper_ids],
        )
    advance(conn, email, seen_through, now, delivered=True)


def advance(
    conn: Connection, email: str, seen_through: int, now: datetime, *, delivered: bool
) -> None:
    """Move a subscriber's progress forward (never back)."""
    t = subscribers_table
    current = conn.execute(sa.select(t.c.seen_through).where(t.c.email == email)).first()
    if current is None:
        conn.execute(
            t.insert().values(
                email=email,
                seen_through=seen_through,
                created_at=now,
                last_digest_at=now if delivered else None,
            )
        )
        return
    values: dict[str, object] = {"seen_through": max(seen_through, current.seen_through)}
    if delivered:
        values["last_digest_at"] = now
    conn.execute(t.update().where(t.c.email == email).values(values))


def sent_keys(conn: Connection, email: str) -> set[str]:
    rows = conn.execute(
        sa.select(papers_table.c.arxiv_id, papers_table.c.title_key)
        .join(sent_papers_table, sent_papers_table.c.paper_id == papers_table.c.id)
        .where(sent_papers_table.c.subscriber == email)
    ).all()
    return {row_key(r) for r in rows}


def delivery_count(conn: Connection, email: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(deliveries_table)
    if email is not None:
        query = query.where(deliveries_table.c.subscriber == email)
    return int(conn.execute(query).scalar_one())


def subscriber_status(
    conn: Connection, emails: Sequence[str]
) -> dict[str, tuple[datetime | None, int]]:
    """For each subscriber: when the last digest went out and how many papers in all."""
    t, s = subscribers_table, sent_papers_table
    last: dict[str, datetime | None] = {}
    counts: dict[str, int] = {}
    for chunk in chunks(list(emails)):
        query = sa.select(t.c.email, t.c.last_digest_at).where(t.c.email.in_(chunk))
        last.update((row.email, row.last_digest_at) for row in conn.execute(query))
        per_subscriber = (
            sa.select(s.c.subscriber, sa.func.count().label("n"))
            .where(s.c.subscriber.in_(chunk))
            .group_by(s.c.subscriber)
        )
        counts.update((row.subscriber, int(row.n)) for row in conn.execute(per_subscriber))
    return {e: (last.get(e), int(counts.get(e, 0))) for e in emails}
