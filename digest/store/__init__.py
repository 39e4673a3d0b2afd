"""The database: the only package that talks to it (SQLAlchemy 2.x Core).

One module per domain, each a set of functions over a connection, behind the `Store`
facade that opens one transaction per call:

- `papers`: the seen-set (ingest, lookups, what each subscriber has not considered yet);
- `ledger`: deliveries, the papers each subscriber was sent, each subscriber's progress;
- `memos`: what the sources remember between runs (files read, HTTP validators);
- `embeddings`: the ranker's vector cache;
- `db`: engine, migrations (Alembic, applied on open), transactions, error mapping.

Works the same on SQLite (the default) and PostgreSQL (several workers). Any database
error is raised as a one-line `StoreError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import numpy as np
from sqlalchemy.engine import Engine

from digest.models import FileFingerprint, Paper, SourceMemo, UrlMemo, Validators
from digest.store import embeddings, ledger, memos, papers
from digest.store.db import create_engine, migrate, safe_url, transaction
from digest.store.papers import Candidates, IngestResult

__all__ = ["Candidates", "IngestResult", "Store"]


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

    # -- ledger ---------------------------------------------------------------------------

    def record_delivery(
        self,
        email: str,
        paper_ids: Sequence[int],
        *,
        message_id: str,
        destination: str,
        seen_through: int,
        now: datetime,
    ) -> None:
        """After the mailer accepted a digest: ledger rows and progress, one transaction."""
        with transaction(self.engine) as conn:
            ledger.record_delivery(
                conn,
                email,
                paper_ids,
                message_id=message_id,
                destination=destination,
                seen_through=seen_through,
                now=now,
            )

    def mark_considered(self, email: str, seen_through: int, now: datetime) -> None:
        """Nothing was worth sending: remember the papers were looked at."""
        with transaction(self.engine) as conn:
            ledger.advance(conn, email, seen_through, now, delivered=False)

    def sent_keys(self, email: str) -> set[str]:
        """Keys of every paper ever sent to this subscriber."""
        with transaction(self.engine) as conn:
            return ledger.sent_keys(conn, email)

    def delivery_count(self, email: str | None = None) -> int:
        with transaction(self.engine) as conn:
            return ledger.delivery_count(conn, email)

    def subscriber_status(self, emails: Sequence[str]) -> dict[str, tuple[datetime | None, int]]:
        with transaction(self.engine) as conn:
            return ledger.subscriber_status(conn, emails)

    # -- source memory (read side; pages are remembered by `ingest`) ----------------------

    def file_fingerprint(self, path: str) -> FileFingerprint | None:
        with transaction(self.engine) as conn:
            return memos.file_fingerprint(conn, path)

    def http_validators(self, url: str) -> Validators | None:
        with transaction(self.engine) as conn:
            return memos.http_validators(conn, url)

    # Transitional, until every source returns its memo with the page.
    def remember_file(self, fingerprint: FileFingerprint) -> None:
        with transaction(self.engine) as conn:
            memos.remember(conn, fingerprint, datetime.now(UTC))

    def remember_http(self, url: str, validators: Validators) -> None:
        with transaction(self.engine) as conn:
            memos.remember(conn, UrlMemo(url, validators), datetime.now(UTC))

    # -- embeddings (the ranker's EmbeddingCache) -----------------------------------------

    def get(self, keys: Sequence[str], model: str) -> dict[str, np.ndarray]:
        with transaction(self.engine) as conn:
            return embeddings.get(conn, keys, model)

    def put(self, vectors: Mapping[str, np.ndarray], model: str) -> None:
        with transaction(self.engine) as conn:
            embeddings.put(conn, vectors, model)
