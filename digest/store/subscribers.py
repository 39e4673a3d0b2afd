"""Subscriber state that the subscribers themselves change: unsubscribes, bounces, feedback.

An unsubscribe (web page, one-click POST, mail) and an address suppressed after hard
bounces are rows of `suppressions`, which planning already skips; the config file does not
bring the address back, only `enable` does. Bounces are counted per delivery-status
notification, so reading the same mailbox twice counts nothing twice. Feedback keeps a
subscriber's latest verdict per paper, with the paper's title for the ranker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from digest.models import Feedback, Paper, Reason
from digest.store import papers
from digest.store.db import chunks, upsert
from digest.store.schema import (
    bounces_table,
    feedback_table,
    messages_table,
    subscribers_table,
    suppressions_table,
)


@dataclass(frozen=True, slots=True)
class Bounce:
    """One recipient of one delivery-status notification."""

    email: str
    report_id: str  # the notification's identity (its Message-ID, else a hash of it)
    status: str  # the RFC 3463 status code, e.g. 5.1.1
    hard: bool  # permanent, and about the address (not a full mailbox or a policy block)
    detail: str = ""  # the diagnostic, as the reporting server wrote it


@dataclass(frozen=True, slots=True)
class BounceOutcome:
    counted: bool  # False: this notification was read before
    hard_bounces: int  # hard bounces counted for the address since it was last enabled
    suppressed: bool  # this bounce suppressed the address


@dataclass(frozen=True, slots=True)
class SentPaper:
    """A paper as it went out in one of a subscriber's digests."""

    paper: Paper
    why: tuple[Reason, ...]
    issue_date: date
    sent_at: datetime
    message_id: str


def suppress(conn: Connection, email: str, reason: str, now: datetime) -> bool:
    """Stop mailing `email`; True if it was not suppressed already (the first reason stays)."""
    inserted = conn.execute(
        _insert_ignore(conn, suppressions_table)
        .values(email=email, reason=reason, created_at=now)
        .returning(suppressions_table.c.email)
    ).first()
    return inserted is not None


def enable(conn: Connection, email: str) -> list[str]:
    """Mail `email` again: lift its suppressions and forget its bounces and refusals.

    Returns the reasons it was suppressed for (empty if it was not)."""
    s = suppressions_table.c
    same = sa.func.lower(s.email) == email.lower()
    reasons = [row.reason for row in conn.execute(sa.select(s.reason).where(same))]
    conn.execute(suppressions_table.delete().where(same))
    conn.execute(
        bounces_table.update()
        .where(sa.func.lower(bounces_table.c.subscriber) == email.lower())
        .values(cleared=True)
    )
    conn.execute(
        subscribers_table.update()
        .where(sa.func.lower(subscribers_table.c.email) == email.lower())
        .values(refusals=0)
    )
    return reasons


def record_bounce(conn: Connection, bounce: Bounce, now: datetime, limit: int) -> BounceOutcome:
    """Count a bounce once; suppress the address at `limit` hard bounces (0: never)."""
    b = bounces_table.c
    inserted = conn.execute(
        _insert_ignore(conn, bounces_table)
        .values(
            subscriber=bounce.email,
            report_id=bounce.report_id,
            status=bounce.status,
            hard=bounce.hard,
            detail=bounce.detail[:2000],
            cleared=False,
            created_at=now,
        )
        .returning(b.subscriber)
    ).first()
    hard = int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(bounces_table)
            .where(b.subscriber == bounce.email, b.hard.is_(True), b.cleared.is_(False))
        ).scalar_one()
    )
    suppressed = False
    if inserted is not None and bounce.hard and limit > 0 and hard >= limit:
        reason = f"bounced: {hard} hard bounce{'s' if hard != 1 else ''}, last {bounce.status}"
        if bounce.detail:
            reason += f" ({bounce.detail[:200]})"
        suppressed = suppress(conn, bounce.email, reason, now)
    return BounceOutcome(inserted is not None, hard, suppressed)


def record_feedback(
    conn: Connection,
    email: str,
    paper_key: str,
    verdict: str,
    issue_date: date | None,
    now: datetime,
) -> Feedback:
    """Keep `verdict` ("more" or "less") as this subscriber's latest word on the paper."""
    found = papers.by_keys(conn, [paper_key])
    title = next((p.title for p in found if p.key == paper_key), "")
    upsert(
        conn,
        feedback_table,
        {"subscriber": email, "paper_key": paper_key},
        {"verdict": verdict, "title": title, "issue_date": issue_date, "created_at": now},
    )
    return Feedback(paper_key, "more" if verdict == "more" else "less", title)


def undo_feedback(conn: Connection, email: str, paper_key: str, verdict: str) -> bool:
    """Forget the verdict, unless the subscriber has since given the other one."""
    f = feedback_table.c
    deleted = conn.execute(
        feedback_table.delete().where(
            f.subscriber == email, f.paper_key == paper_key, f.verdict == verdict
        )
    )
    return bool(deleted.rowcount)


def feedback_for(conn: Connection, emails: Sequence[str]) -> dict[str, list[Feedback]]:
    """Each subscriber's feedback, oldest first; subscribers without any are left out."""
    f = feedback_table.c
    found: dict[str, list[Feedback]] = {}
    for chunk in chunks(list(emails)):
        query = (
            sa.select(f.subscriber, f.paper_key, f.verdict, f.title)
            .where(f.subscriber.in_(chunk))
            .order_by(f.subscriber, f.created_at, f.paper_key)
        )
        for row in conn.execute(query):
            verdict: Any = row.verdict
            found.setdefault(row.subscriber, []).append(Feedback(row.paper_key, verdict, row.title))
    return found


def sent_papers(conn: Connection, email: str, messages: int) -> list[SentPaper]:
    """The papers of this subscriber's last `messages` digests that went out, newest first."""
    m = messages_table.c
    rows = conn.execute(
        sa.select(m.message_id, m.issue_date, m.sent_at, m.contents)
        .where(m.subscriber == email, m.status == "sent")
        .order_by(m.sent_at.desc(), m.id.desc())
        .limit(messages)
    ).all()
    ids = [int(p["id"]) for r in rows for p in (r.contents or {}).get("papers", [])]
    by_id = papers.by_ids(conn, ids)
    result = []
    for row in rows:
        for item in (row.contents or {}).get("papers", []):
            paper = by_id.get(int(item["id"]))
            if paper is None:
                continue
            why = tuple(Reason.from_json(w) for w in item.get("why", ()))
            issue = row.issue_date or row.sent_at.date()
            result.append(SentPaper(paper, why, issue, row.sent_at, row.message_id))
    return result


def message_recipient(conn: Connection, message_id: str) -> str | None:
    """The subscriber a message of ours went to, by its Message-ID."""
    m = messages_table.c
    found = conn.execute(sa.select(m.subscriber).where(m.message_id == message_id)).scalar()
    return str(found) if found is not None else None


def ping(conn: Connection) -> None:
    conn.execute(sa.select(sa.literal(1))).scalar_one()


def _insert_ignore(conn: Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()
