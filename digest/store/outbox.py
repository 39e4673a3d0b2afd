"""The outbox: planning digests (the exactly-once point), claiming them, recording outcomes.

Planning a digest: bump the subscriber's `plan_version` only if it is still the version
the planner read (compare-and-swap: of two overlapping planners one wins, the other skips
that subscriber), advance their progress, insert the message and reserve its papers; the
(subscriber, paper) key of `reservations` makes a second reservation impossible. A chunk
of digests is planned in one transaction, with a handful of statements in all. Delivery
claims due messages with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so many workers
share one outbox; SQLite serialises writers), and records each outcome. A failed message
releases its papers into the next digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.db import chunks
from digest.store.rows import row_key
from digest.store.schema import (
    decisions_table,
    messages_table,
    papers_table,
    released_papers_table,
    reservations_table,
    runs_table,
    subscribers_table,
    suppressions_table,
)

NEW_SUBSCRIBER = -1  # plan_version of a subscriber with no row yet

Outcome = Literal["sent", "retry", "failed"]


@dataclass(frozen=True, slots=True)
class PlannedDigest:
    """One subscriber's digest as ranked, to be planned atomically."""

    subscriber: str
    issue_date: date
    paper_ids: tuple[int, ...]
    contents: dict[str, Any]  # JSON: {"considered": n, "papers": [{"id", "score", "why"}]}
    seen_through: int
    plan_version: int  # as read with the candidates
    slot: datetime | None = None  # the scheduled slot this digest is for (None: forced)
    seen_from: int | None = None  # the papers drawn on: row ids in (seen_from, seen_through]


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    id: int
    subscriber: str
    message_id: str
    issue_date: date
    created_at: datetime
    attempts: int
    contents: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    id: int
    outcome: Outcome
    detail: str  # where it went, or the error
    next_attempt_at: datetime | None = None
    permanent: bool = False  # the server refused it (5xx), not a give-up after retries


@dataclass(slots=True)
class PlanOutcome:
    planned: list[str] = field(default_factory=list)  # subscribers with a message
    considered: list[str] = field(default_factory=list)  # nothing to send; progress advanced
    lost: list[str] = field(default_factory=list)  # another planner got there first


def message_id_for(subscriber: str, issue_date: date, sequence: int, domain: str) -> str:
    """Deterministic: the same digest always carries the same Message-ID."""
    who = hashlib.sha256(subscriber.casefold().encode()).hexdigest()[:16]
    return f"<digest.{issue_date:%Y%m%d}.{sequence}.{who}@{domain}>"


def plan(
    conn: Connection,
    digests: Sequence[PlannedDigest],
    *,
    now: datetime,
    domain: str,
    run_id: int | None,
) -> PlanOutcome:
    """Plan a chunk of digests in a handful of statements, not a handful per subscriber.

    Each digest is decided as if it ran alone, in order (see `_take_turns`); then each
    table is written once for the whole chunk.
    """
    took = _take_turns(conn, digests, now)
    winners = sorted({d.subscriber for d, ok in zip(digests, took, strict=True) if ok})
    if winners:
        released = released_papers_table.c
        conn.execute(released_papers_table.delete().where(released.subscriber.in_(winners)))
    messages = iter(
        _insert_messages(
            conn,
            [d for d, ok in zip(digests, took, strict=True) if ok and d.paper_ids],
            now,
            domain,
            run_id,
        )
    )
    outcome = PlanOutcome()
    reservations: list[dict[str, object]] = []
    decisions: list[dict[str, object]] = []
    for digest, ok in zip(digests, took, strict=True):
        if not ok:
            outcome.lost.append(digest.subscriber)
            decisions.append(_decision(digest, "planned by another run", now, run_id))
        elif not digest.paper_ids:
            outcome.considered.append(digest.subscriber)
            status = "no matching papers" if _considered(digest) else "nothing new"
            decisions.append(_decision(digest, status, now, run_id))
        else:
            row_id, message_id = next(messages)
            reservations += [
                {"subscriber": digest.subscriber, "paper_id": p, "message_id": row_id}
                for p in digest.paper_ids
            ]
            outcome.planned.append(digest.subscriber)
            decisions.append(_decision(digest, "planned", now, run_id, message_id=message_id))
    if reservations:
        conn.execute(reservations_table.insert(), reservations)
    if decisions:
        conn.execute(decisions_table.insert(), decisions)
    return outcome


def _decision(
    digest: PlannedDigest,
    status: str,
    now: datetime,
    run_id: int | None,
    *,
    message_id: str | None = None,
    detail: str = "",
) -> dict[str, object]:
    """A `decisions` row: why this subscriber's digest was, or was not, sent."""
    return {
        "subscriber": digest.subscriber,
        "day": digest.issue_date,
        "slot_at": digest.slot,
        "status": status,
        "detail": detail,
        "considered": _considered(digest),
        "papers": len(digest.paper_ids),
        "message_id": message_id,
        "run_id": run_id,
        "created_at": now,
        "considered_from": digest.seen_from,
        "considered_through": digest.seen_through if digest.seen_from is not None else None,
    }


def _considered(digest: PlannedDigest) -> int:
    return int(digest.contents.get("considered", 0))


def skip_slot(
    conn: Connection,
    subscriber: str,
    slot: datetime,
    day: date,
    reason: str,
    now: datetime,
    seen_through_if_new: int,
) -> bool:
    """Mark a missed slot handled without sending; its papers roll into the next digest."""
    t = subscribers_table
    handled = conn.execute(
        t.update()
        .where(
            t.c.email == subscriber,
            sa.or_(t.c.last_slot_at.is_(None), t.c.last_slot_at < slot),
        )
        .values(last_slot_at=slot)
        .returning(t.c.email)
    ).first()
    if handled is None:
        exists = conn.execute(sa.select(t.c.email).where(t.c.email == subscriber)).first()
        if exists is not None:
            return False  # handled already, here or by another process
        conn.execute(
            t.insert().values(
                email=subscriber,
                seen_through=seen_through_if_new,
                created_at=now,
                last_slot_at=slot,
            )
        )
    digest = PlannedDigest(subscriber, day, (), {}, 0, 0, slot)
    conn.execute(
        decisions_table.insert().values(_decision(digest, "skipped", now, None, detail=reason))
    )
    return True


def last_slots(
    conn: Connection, emails: Sequence[str]
) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Per subscriber: the last slot handled (sent or skipped), the last one planned."""
    t, d = subscribers_table, decisions_table.c
    handled: dict[str, datetime | None] = {}
    planned: dict[str, datetime | None] = {}
    for chunk in chunks(list(emails)):
        query = sa.select(t.c.email, t.c.last_slot_at).where(t.c.email.in_(chunk))
        handled.update((row.email, row.last_slot_at) for row in conn.execute(query))
        query = (
            sa.select(d.subscriber, sa.func.max(d.slot_at).label("slot"))
            .where(d.subscriber.in_(chunk), d.status == "planned")
            .group_by(d.subscriber)
        )
        planned.update((row.subscriber, row.slot) for row in conn.execute(query))
    return {e: (handled.get(e), planned.get(e)) for e in emails}


@dataclass(frozen=True, slots=True)
class _Turn:
    """A subscriber's planning state, as locked (or as this chunk has left it)."""

    plan_version: int
    seen_through: int
    last_slot_at: datetime | None


def _take_turns(conn: Connection, digests: Sequence[PlannedDigest], now: datetime) -> list[bool]:
    """The compare-and-swap of each digest on plan_version (and slot); advances progress.

    New subscribers are inserted first, ON CONFLICT DO NOTHING: of planners racing to
    create the same subscriber one inserts the row, and RETURNING tells it so. Then the
    chunk's rows are read under lock (PostgreSQL: FOR UPDATE, in email order so that two
    planners never deadlock; SQLite: BEGIN IMMEDIATE already holds the database), so the
    swaps can be decided here, in order, exactly as one UPDATE per digest would, and
    written back with one executemany. Returns, per digest, whether it took its turn.
    """
    t = subscribers_table
    new = {d.subscriber: d for d in reversed(digests) if d.plan_version == NEW_SUBSCRIBER}
    created: set[str] = set()
    if new:
        rows = [
            {
                "email": email,
                "seen_through": new[email].seen_through,
                "created_at": now,
                "plan_version": 1,
                "refusals": 0,
                "last_slot_at": new[email].slot,
            }
            for email in sorted(new)
        ]
        created = set(conn.execute(_insert_ignore(conn, t).returning(t.c.email), rows).scalars())
    locked = (
        sa.select(t.c.email, t.c.plan_version, t.c.seen_through, t.c.last_slot_at)
        .where(t.c.email.in_(sorted({d.subscriber for d in digests})))
        .order_by(t.c.email)
        .with_for_update()  # rendered as nothing on SQLite
    )
    found = {
        r.email: _Turn(r.plan_version, r.seen_through, r.last_slot_at) for r in conn.execute(locked)
    }
    state = {email: turn for email, turn in found.items() if email not in created}
    took: list[bool] = []
    changed: set[str] = set()
    for digest in digests:
        email = digest.subscriber
        after: _Turn | None
        if digest.plan_version == NEW_SUBSCRIBER:  # wins with the row it created, once
            after = found[email] if email in created and email not in state else None
        else:
            after = _swap(state.get(email), digest)
            if after is not None:
                changed.add(email)
        if after is not None:
            state[email] = after
        took.append(after is not None)
    if changed:
        conn.execute(
            t.update()
            .where(t.c.email == sa.bindparam("who"))
            .values(
                plan_version=sa.bindparam("version"),
                seen_through=sa.bindparam("seen"),
                last_slot_at=sa.bindparam("slot"),
            ),
            [
                {
                    "who": email,
                    "version": state[email].plan_version,
                    "seen": state[email].seen_through,
                    "slot": state[email].last_slot_at,
                }
                for email in sorted(changed)
            ],
        )
    return took


def _swap(turn: _Turn | None, digest: PlannedDigest) -> _Turn | None:
    """The state after this digest's compare-and-swap; None if another plan got there first."""
    if turn is None or turn.plan_version != digest.plan_version:
        return None
    seen_through = max(turn.seen_through, digest.seen_through)
    if digest.slot is None:
        return _Turn(turn.plan_version + 1, seen_through, turn.last_slot_at)
    if turn.last_slot_at is not None and turn.last_slot_at >= digest.slot:
        return None  # a slot is planned once, whatever races
    return _Turn(turn.plan_version + 1, seen_through, digest.slot)


def _insert_messages(
    conn: Connection,
    digests: Sequence[PlannedDigest],
    now: datetime,
    domain: str,
    run_id: int | None,
) -> list[tuple[int, str]]:
    """Insert one message per digest; returns (row id, Message-ID) in the digests' order.

    A subscriber's messages of a day are numbered in turn (the sequence is part of the
    Message-ID): one grouped count for the chunk, continued here for the chunk's own.
    """
    if not digests:
        return []
    m = messages_table.c
    counts = conn.execute(
        sa.select(m.subscriber, m.issue_date, sa.func.count().label("n"))
        .where(
            m.subscriber.in_(sorted({d.subscriber for d in digests})),
            m.issue_date.in_(sorted({d.issue_date for d in digests})),
        )
        .group_by(m.subscriber, m.issue_date)
    )
    sequences: dict[tuple[str, date], int] = {(r.subscriber, r.issue_date): r.n for r in counts}
    rows: list[dict[str, object]] = []
    for digest in digests:
        key = (digest.subscriber, digest.issue_date)
        sequence = sequences.get(key, 0)
        sequences[key] = sequence + 1
        rows.append(
            {
                "subscriber": digest.subscriber,
                "message_id": message_id_for(
                    digest.subscriber, digest.issue_date, sequence, domain
                ),
                "paper_count": len(digest.paper_ids),
                "issue_date": digest.issue_date,
                "sequence": sequence,
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
                "contents": digest.contents,
                "run_id": run_id,
            }
        )
    # Matched by Message-ID (unique), not by position: SQLite cannot return the rows of
    # a batched INSERT in parameter order, and SQLAlchemy would insert them one by one.
    inserted = conn.execute(messages_table.insert().returning(m.id, m.message_id), rows)
    ids = {r.message_id: r.id for r in inserted}
    return [(ids[r["message_id"]], str(r["message_id"])) for r in rows]


def _insert_ignore(conn: Connection, table: sa.Table) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def claim(
    conn: Connection, worker: str, now: datetime, limit: int, lease: timedelta
) -> list[ClaimedMessage]:
    """Take up to `limit` due messages for this worker, with a lease that expires."""
    m = messages_table.c
    due = sa.or_(
        sa.and_(m.status.in_(("pending", "retry")), m.next_attempt_at <= now),
        sa.and_(m.status == "sending", m.lease_until < now),  # its worker died
    )
    query = sa.select(m.id).where(due).order_by(m.next_attempt_at, m.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = [row.id for row in conn.execute(query)]
    if not ids:
        return []
    conn.execute(
        messages_table.update()
        .where(m.id.in_(ids))
        .values(
            status="sending",
            claimed_by=worker,
            lease_until=now + lease,
            attempts=m.attempts + 1,
        )
    )
    rows = conn.execute(
        sa.select(
            m.id, m.subscriber, m.message_id, m.issue_date, m.created_at, m.attempts, m.contents
        )
        .where(m.id.in_(ids))
        .order_by(m.id)
    )
    return [
        ClaimedMessage(
            r.id, r.subscriber, r.message_id, r.issue_date, r.created_at, r.attempts, r.contents
        )
        for r in rows
    ]


def finish(
    conn: Connection,
    worker: str,
    results: Sequence[DeliveryResult],
    now: datetime,
    suppress_after: int,
) -> None:
    """Record outcomes of messages this worker still holds.

    Sent messages, the common case, are recorded with three statements for the whole
    batch; retries and failures (rare) one by one.
    """
    m = messages_table.c
    sent = [r for r in results if r.outcome == "sent"]
    if sent:
        held = {
            row.id: row.subscriber
            for row in conn.execute(
                sa.select(m.id, m.subscriber).where(
                    m.id.in_([r.id for r in sent]), m.claimed_by == worker, m.status == "sending"
                )
            )
        }  # a message missing here ran out of lease and another worker took it over
        still_held = [r for r in sent if r.id in held]
        if still_held:
            conn.execute(
                messages_table.update()
                .where(m.id == sa.bindparam("row_id"))
                .values(
                    status="sent",
                    sent_at=now,
                    destination=sa.bindparam("where"),
                    lease_until=None,
                ),
                [{"row_id": r.id, "where": r.detail} for r in still_held],
            )
            emails = sorted({held[r.id] for r in still_held})
            for chunk in chunks(emails):
                conn.execute(
                    subscribers_table.update()
                    .where(subscribers_table.c.email.in_(chunk))
                    .values(last_digest_at=now, refusals=0)
                )
    for result in results:
        if result.outcome == "sent":
            continue
        mine = sa.and_(m.id == result.id, m.claimed_by == worker, m.status == "sending")
        values: dict[str, object] = {"lease_until": None}
        if result.outcome == "retry":
            values |= {
                "status": "retry",
                "next_attempt_at": result.next_attempt_at,
                "last_error": result.detail,
            }
        else:
            values |= {"status": "failed", "last_error": result.detail}
        subscriber = conn.execute(
            messages_table.update().where(mine).values(values).returning(m.subscriber)
        ).scalar()
        if subscriber is None:
            continue  # the lease ran out and another worker took it over
        if result.outcome == "failed":
            _release(conn, result.id, subscriber)
            if result.permanent:
                _count_refusal(conn, subscriber, result.detail, now, suppress_after)


def _release(conn: Connection, message_row_id: int, subscriber: str) -> None:
    r = reservations_table.c
    paper_ids = [
        row.paper_id
        for row in conn.execute(sa.select(r.paper_id).where(r.message_id == message_row_id))
    ]
    conn.execute(reservations_table.delete().where(r.message_id == message_row_id))
    for paper_id in paper_ids:
        conn.execute(
            _insert_ignore(conn, released_papers_table).values(
                subscriber=subscriber, paper_id=paper_id
            )
        )


def _count_refusal(
    conn: Connection, subscriber: str, detail: str, now: datetime, suppress_after: int
) -> None:
    t = subscribers_table
    refusals = conn.execute(
        t.update()
        .where(t.c.email == subscriber)
        .values(refusals=t.c.refusals + 1)
        .returning(t.c.refusals)
    ).scalar()
    if refusals is not None and suppress_after > 0 and refusals >= suppress_after:
        conn.execute(
            _insert_ignore(conn, suppressions_table).values(
                email=subscriber,
                reason=f"refused {refusals} digests in a row: {detail}",
                created_at=now,
            )
        )


def release_claims(conn: Connection, worker: str, ids: Sequence[int]) -> None:
    """Give back claimed messages this worker never started (shutdown, error storm)."""
    m = messages_table.c
    for chunk in chunks(list(ids)):
        conn.execute(
            messages_table.update()
            .where(m.id.in_(chunk), m.claimed_by == worker, m.status == "sending")
            .values(
                status=sa.case((m.attempts > 1, "retry"), else_="pending"),
                attempts=m.attempts - 1,
                lease_until=None,
                claimed_by=None,
            )
        )


def suppressed(conn: Connection, emails: Sequence[str]) -> dict[str, str]:
    t = suppressions_table
    found: dict[str, str] = {}
    for chunk in chunks(list(emails)):
        query = sa.select(t.c.email, t.c.reason).where(t.c.email.in_(chunk))
        found.update((row.email, row.reason) for row in conn.execute(query))
    return found


def next_due(conn: Connection) -> datetime | None:
    m = messages_table.c
    due: datetime | None = conn.execute(
        sa.select(sa.func.min(m.next_attempt_at)).where(m.status.in_(("pending", "retry")))
    ).scalar()
    return due


def start_run(conn: Connection, kind: str, now: datetime) -> int:
    return int(
        conn.execute(
            runs_table.insert().values(kind=kind, started_at=now).returning(runs_table.c.id)
        ).scalar_one()
    )


def finish_run(
    conn: Connection, run_id: int, now: datetime, counts: dict[str, int], errors: list[str]
) -> None:
    conn.execute(
        runs_table.update()
        .where(runs_table.c.id == run_id)
        .values(finished_at=now, errors=errors[:50], **counts)
    )


def recent_runs(conn: Connection, limit: int) -> list[dict[str, Any]]:
    query = sa.select(runs_table).order_by(runs_table.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def failures(conn: Connection, limit: int) -> list[dict[str, Any]]:
    m = messages_table.c
    query = (
        sa.select(m.subscriber, m.status, m.attempts, m.last_error, m.next_attempt_at)
        .where(m.status.in_(("failed", "retry")))
        .order_by(m.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def status_counts(conn: Connection) -> dict[str, int]:
    m = messages_table.c
    query = sa.select(m.status, sa.func.count().label("n")).group_by(m.status)
    return {row.status: int(row.n) for row in conn.execute(query)}


def sent_keys(conn: Connection, email: str) -> set[str]:
    """Keys of the papers reserved for or sent to this subscriber."""
    rows = conn.execute(
        sa.select(papers_table.c.arxiv_id, papers_table.c.title_key)
        .join(reservations_table, reservations_table.c.paper_id == papers_table.c.id)
        .where(reservations_table.c.subscriber == email)
    ).all()
    return {row_key(r) for r in rows}


def delivery_count(conn: Connection, email: str | None = None) -> int:
    m = messages_table.c
    query = sa.select(sa.func.count()).select_from(messages_table).where(m.status == "sent")
    if email is not None:
        query = query.where(m.subscriber == email)
    return int(conn.execute(query).scalar_one())


def subscriber_status(
    conn: Connection, emails: Sequence[str]
) -> dict[str, tuple[datetime | None, int]]:
    """For each subscriber: when the last digest went out and how many papers in all."""
    t, m = subscribers_table, messages_table.c
    last: dict[str, datetime | None] = {}
    counts: dict[str, int] = {}
    for chunk in chunks(list(emails)):
        query = sa.select(t.c.email, t.c.last_digest_at).where(t.c.email.in_(chunk))
        last.update((row.email, row.last_digest_at) for row in conn.execute(query))
        per_subscriber = (
            sa.select(m.subscriber, sa.func.sum(m.paper_count).label("n"))
            .where(m.subscriber.in_(chunk), m.status == "sent")
            .group_by(m.subscriber)
        )
        counts.update((row.subscriber, int(row.n or 0)) for row in conn.execute(per_subscriber))
    return {e: (last.get(e), int(counts.get(e, 0))) for e in emails}
