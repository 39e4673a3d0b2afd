"""What happened, for people: fetches per source, decisions per subscriber and day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.schema import decisions_table, fetches_table, messages_table


def record_fetches(
    conn: Connection, reports: Sequence[tuple[str, int, int, int, list[str]]], now: datetime
) -> None:
    """One row per source per fetch: (source, fetched, new, failed, errors)."""
    rows = [
        {"source": s, "at": now, "fetched": f, "new": n, "failed": x, "errors": e[:20]}
        for s, f, n, x, e in reports
    ]
    if rows:
        conn.execute(fetches_table.insert(), rows)


def source_health(conn: Connection, runs: int) -> dict[str, dict[str, Any]]:
    """Per source: the last fetch that read something without failing, and the last
    `runs` fetches' failures."""
    f = fetches_table.c
    health: dict[str, dict[str, Any]] = {}
    good = (
        sa.select(f.source, sa.func.max(f.at).label("at")).where(f.failed == 0).group_by(f.source)
    )
    for row in conn.execute(good):
        health.setdefault(row.source, {})["last_success"] = row.at
    sources = [row.source for row in conn.execute(sa.select(f.source).distinct())]
    for source in sources:
        recent = conn.execute(
            sa.select(f.at, f.failed, f.errors)
            .where(f.source == source)
            .order_by(f.at.desc(), f.id.desc())
            .limit(runs)
        ).all()
        entry = health.setdefault(source, {})
        entry.setdefault("last_success", None)
        entry["recent_failures"] = sum(1 for r in recent if r.failed)
        entry["last_error"] = next((r.errors[0] for r in recent if r.failed and r.errors), None)
        entry["last_fetch"] = recent[0].at if recent else None
    return health


def decisions(conn: Connection, email: str, day: date) -> list[dict[str, Any]]:
    d = decisions_table.c
    query = sa.select(decisions_table).where(d.subscriber == email, d.day == day).order_by(d.id)
    return [dict(row._mapping) for row in conn.execute(query)]


def messages_on(conn: Connection, email: str, day: date) -> list[dict[str, Any]]:
    m = messages_table.c
    query = (
        sa.select(
            m.message_id,
            m.status,
            m.attempts,
            m.sent_at,
            m.last_error,
            m.contents,
            m.destination,
        )
        .where(m.subscriber == email, m.issue_date == day)
        .order_by(m.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
