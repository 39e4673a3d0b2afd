"""The database: the only package that talks to it (SQLAlchemy 2.x Core).

One module per domain, each a set of functions over a connection, behind the `Store`
facade that opens one transaction per call:

- `papers`: the seen-set (ingest, lookups, what each subscriber has not considered yet);
- `outbox`: planned messages, their claims and outcomes, reservations, suppressions, runs;
- `memos`: what the sources remember between runs (files read, HTTP validators);
- `embeddings`: the ranker's vector cache;
- `subscribers`: what subscribers change themselves: unsubscribes, bounces, feedback;
- `db`: engine, migrations (Alembic, applied on open), transactions, error mapping.

Works the same on SQLite (the default) and PostgreSQL (several workers). Any database
error is raised as a one-line `StoreError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from digest.models import Feedback, FileFingerprint, Paper, SourceMemo, Validators
from digest.store import embeddings, memos, oplog, outbox, papers, subscribers
from digest.store.db import chunks, create_engine, migrate, safe_url, transaction
from digest.store.outbox import ClaimedMessage, DeliveryResult, PlannedDigest, PlanOutcome
from digest.store.papers import Candidates, IngestResult
from digest.store.subscribers import Bounce, BounceOutcome, SentPaper

__all__ = [
    "Bounce",
    "BounceOutcome",
    "Candidates",
    "ClaimedMessage",
    "DeliveryResult",
    "IngestResult",
    "PlanOutcome",
    "PlannedDigest",
    "SentPaper",
    "Store",
]
PLAN_BATCH = 64  # subscribers planned per transaction


class Store:
    """A handle on the database. Open with `Store.open(url)`; close with `close()`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and bring the schema up to date."""
        engine = create_engine(url)
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def safe_url(self) -> str:
        return safe_url(str(self.engine.url))

    # -- papers ---------------------------------------------------------------------------

    def ingest(
        self, found: Iterable[Paper], now: datetime, memo: SourceMemo | None = None
    ) -> IngestResult:
        """Merge one page's papers into the seen-set and remember the page, atomically."""
        with transaction(self.engine) as conn:
            result = papers.ingest(conn, found, now)
            if memo is not None:
                memos.remember(conn, memo, now)
        return result

    def papers_by_key(self, keys: Sequence[str]) -> list[Paper]:
        with transaction(self.engine) as conn:
            return papers.by_keys(conn, keys)

    def papers_by_id(self, ids: Sequence[int]) -> dict[int, Paper]:
        with transaction(self.engine) as conn:
            return papers.by_ids(conn, ids)

    def papers_drawn_on(
        self, email: str, after_id: int, through_id: int, before: datetime
    ) -> dict[int, Paper]:
        """The papers (by row id) a digest decided at `before` drew on (`digest why`)."""
        with transaction(self.engine) as conn:
            return papers.drawn_on(conn, email, after_id, through_id, before)

    def papers_seen_since(self, since: datetime) -> list[Paper]:
        """Papers first seen at or after `since`, oldest first."""
        with transaction(self.engine) as conn:
            return papers.seen_since(conn, since)

    def count_papers(self) -> int:
        with transaction(self.engine) as conn:
            return papers.count(conn)

    def candidates(
        self, emails: Sequence[str], now: datetime, new_subscriber_days: int
    ) -> Candidates:
        with transaction(self.engine) as conn:
            return papers.candidates(conn, emails, now, new_subscriber_days)

    # -- outbox ---------------------------------------------------------------------------

    def plan(
        self,
        digests: Sequence[PlannedDigest],
        *,
        now: datetime,
        domain: str,
        run_id: int | None = None,
    ) -> PlanOutcome:
        """Plan digests: messages, reservations and progress; the exactly-once point."""
        outcome = PlanOutcome()
        for chunk in chunks(list(digests), PLAN_BATCH):
            with transaction(self.engine) as conn:
                part = outbox.plan(conn, chunk, now=now, domain=domain, run_id=run_id)
            outcome.planned += part.planned
            outcome.considered += part.considered
            outcome.lost += part.lost
        return outcome

    def claim(
        self, worker: str, now: datetime, limit: int, lease: timedelta
    ) -> list[ClaimedMessage]:
        with transaction(self.engine) as conn:
            return outbox.claim(conn, worker, now, limit, lease)

    def finish(
        self, worker: str, results: Sequence[DeliveryResult], now: datetime, suppress_after: int
    ) -> None:
        with transaction(self.engine) as conn:
            outbox.finish(conn, worker, results, now, suppress_after)

    def skip_slot(
        self,
        subscriber: str,
        slot: datetime,
        day: date,
        reason: str,
        now: datetime,
        new_subscriber_days: int,
    ) -> bool:
        """A missed slot, handled without mail (its papers roll into the next digest)."""
        with transaction(self.engine) as conn:
            start = papers.first_id_since(conn, now - timedelta(days=new_subscriber_days)) - 1
            return outbox.skip_slot(conn, subscriber, slot, day, reason, now, start)

    def last_slots(
        self, emails: Sequence[str]
    ) -> dict[str, tuple[datetime | None, datetime | None]]:
        with transaction(self.engine) as conn:
            return outbox.last_slots(conn, emails)

    def decisions(self, email: str, day: date) -> list[dict[str, Any]]:
        with transaction(self.engine) as conn:
            return oplog.decisions(conn, email, day)

    def messages_on(self, email: str, day: date) -> list[dict[str, Any]]:
        with transaction(self.engine) as conn:
            return oplog.messages_on(conn, email, day)

    def record_fetches(
        self, reports: Sequence[tuple[str, int, int, int, list[str]]], now: datetime
    ) -> None:
        with transaction(self.engine) as conn:
            oplog.record_fetches(conn, reports, now)

    def source_health(self, runs: int = 5) -> dict[str, dict[str, Any]]:
        with transaction(self.engine) as conn:
            return oplog.source_health(conn, runs)

    def release_claims(self, worker: str, ids: Sequence[int]) -> None:
        with transaction(self.engine) as conn:
            outbox.release_claims(conn, worker, ids)

    def next_due(self) -> datetime | None:
        with transaction(self.engine) as conn:
            return outbox.next_due(conn)

    def suppressed(self, emails: Sequence[str]) -> dict[str, str]:
        with transaction(self.engine) as conn:
            return outbox.suppressed(conn, emails)

    def start_run(self, kind: str, now: datetime) -> int:
        with transaction(self.engine) as conn:
            return outbox.start_run(conn, kind, now)

    def finish_run(
        self, run_id: int, now: datetime, counts: dict[str, int], errors: list[str]
    ) -> None:
        with transaction(self.engine) as conn:
            outbox.finish_run(conn, run_id, now, counts, errors)

    def recent_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        with transaction(self.engine) as conn:
            return outbox.recent_runs(conn, limit)

    def recent_failures(self, limit: int = 10) -> list[dict[str, Any]]:
        with transaction(self.engine) as conn:
            return outbox.failures(conn, limit)

    def message_counts(self) -> dict[str, int]:
        with transaction(self.engine) as conn:
            return outbox.status_counts(conn)

    def sent_keys(self, email: str) -> set[str]:
        """Keys of every paper reserved for or sent to this subscriber."""
        with transaction(self.engine) as conn:
            return outbox.sent_keys(conn, email)

    def delivery_count(self, email: str | None = None) -> int:
        """Messages sent (to this subscriber)."""
        with transaction(self.engine) as conn:
            return outbox.delivery_count(conn, email)

    def subscriber_status(self, emails: Sequence[str]) -> dict[str, tuple[datetime | None, int]]:
        with transaction(self.engine) as conn:
            return outbox.subscriber_status(conn, emails)

    # -- source memory (read side; pages are remembered by `ingest`) ----------------------

    def file_fingerprint(self, path: str) -> FileFingerprint | None:
        with transaction(self.engine) as conn:
            return memos.file_fingerprint(conn, path)

    def http_validators(self, url: str) -> Validators | None:
        with transaction(self.engine) as conn:
            return memos.http_validators(conn, url)

    # -- embeddings (the ranker's EmbeddingCache) -----------------------------------------

    def get(self, keys: Sequence[str], model: str) -> dict[str, np.ndarray]:
        with transaction(self.engine) as conn:
            return embeddings.get(conn, keys, model)

    def put(self, vectors: Mapping[str, np.ndarray], model: str) -> None:
        with transaction(self.engine) as conn:
            embeddings.put(conn, vectors, model)

    # -- subscriber state: unsubscribes, bounces, feedback (digest serve, digest bounces,
    # digest subscribers; see store/subscribers.py) -----------------------------------------

    def unsubscribe(self, email: str, how: str, now: datetime) -> bool:
        """Suppress `email` ("unsubscribed (one-click)" ...); False if it was already."""
        with transaction(self.engine) as conn:
            return subscribers.suppress(conn, email, f"unsubscribed ({how})", now)

    def enable(self, email: str) -> list[str]:
        """Mail `email` again; returns why it had been suppressed (empty: it was not)."""
        with transaction(self.engine) as conn:
            return subscribers.enable(conn, email)

    def record_bounce(self, bounce: Bounce, now: datetime, limit: int) -> BounceOutcome:
        with transaction(self.engine) as conn:
            return subscribers.record_bounce(conn, bounce, now, limit)

    def record_feedback(
        self, email: str, paper_key: str, verdict: str, issue_date: date | None, now: datetime
    ) -> Feedback:
        with transaction(self.engine) as conn:
            return subscribers.record_feedback(conn, email, paper_key, verdict, issue_date, now)

    def undo_feedback(self, email: str, paper_key: str, verdict: str) -> bool:
        with transaction(self.engine) as conn:
            return subscribers.undo_feedback(conn, email, paper_key, verdict)

    def feedback_for(self, emails: Sequence[str]) -> dict[str, list[Feedback]]:
        """Each subscriber's "more/less like this" (latest per paper); absent: none."""
        with transaction(self.engine) as conn:
            return subscribers.feedback_for(conn, emails)

    def sent_papers(self, email: str, messages: int = 30) -> list[SentPaper]:
        """The papers of this subscriber's last digests that went out, newest first."""
        with transaction(self.engine) as conn:
            return subscribers.sent_papers(conn, email, messages)

    def message_recipient(self, message_id: str) -> str | None:
        """Who a message of ours (by Message-ID) went to; None if it is not ours."""
        with transaction(self.engine) as conn:
            return subscribers.message_recipient(conn, message_id)

    def ping(self) -> None:
        """Raise StoreError if the database does not answer."""
        with transaction(self.engine) as conn:
            subscribers.ping(conn)
