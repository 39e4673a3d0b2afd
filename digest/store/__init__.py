"""The database: the seen-set of papers, the delivery ledger and the sources' memory.

The only module that talks to the database (SQLAlchemy 2.x Core). Works the same on SQLite
(the default) and PostgreSQL (when several workers share the work). The schema is owned by
the Alembic migrations in `digest/migrations`, applied on open.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection, Engine

from digest.errors import StoreError
from digest.models import FileFingerprint, Paper, SourceMemo, UrlMemo, Validators
from digest.store.rows import dedupe, find_existing, merge, paper_values, row_key, row_to_paper
from digest.store.schema import (
    deliveries_table,
    embeddings_table,
    http_cache_table,
    papers_table,
    sent_papers_table,
    source_files_table,
    subscribers_table,
)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_BATCH = 500
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one batch of papers did to the seen-set."""

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


class Store:
    """A handle on the database. Open with `Store.open(url)`; close with `close()`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and bring the schema up to date."""
        try:
            engine = sa.create_engine(url, future=True)
        except sa.exc.ArgumentError as exc:
            raise StoreError(f"DIGEST_DATABASE_URL: cannot use {_safe_url(url)}: {exc}") from None
        except ImportError as exc:
            raise StoreError(
                f"DIGEST_DATABASE_URL: {_safe_url(url)} needs a driver that is not installed "
                f"({exc}); for PostgreSQL: pip install -e '.[postgres]'"
            ) from None
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        store.migrate()
        return store

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Several workers may start at once: one migrates, the others wait.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(74201)"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.OperationalError as exc:
            raise StoreError(
                f"database {_safe_url(str(self.engine.url))}: {_first_line(exc)}"
            ) from None

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StoreError(
                f"database {_safe_url(str(self.engine.url))}: {_first_line(exc)}"
            ) from None

    # -- papers ---------------------------------------------------------------------------

    def ingest(
        self, papers: Iterable[Paper], now: datetime, memo: SourceMemo | None = None
    ) -> IngestResult:
        """Add new papers and update known ones (upvotes, comments, AI fields, a late id).

        A paper is known by its arXiv id, or else by its normalised title: a title-only paper
        that matches a paper with an id becomes that paper, and vice versa.
        """
        merged = dedupe(papers)
        new = updated = unchanged = 0
        new_keys: list[str] = []
        batches = list(_chunks(merged)) or [[]]
        for number, batch in enumerate(batches, start=1):
            with self._tx() as conn:
                existing = find_existing(conn, batch)
                for paper in batch:
                    row = existing.match(paper)
                    if row is None:
                        conn.execute(papers_table.insert().values(paper_values(paper, now)))
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
                    conn.execute(
                        papers_table.update().where(papers_table.c.id == row.id).values(values)
                    )
                    updated += 1
                if memo is not None and number == len(batches):
                    _remember(conn, memo, now)
        return IngestResult(new, updated, unchanged, tuple(new_keys))

    def papers_by_key(self, keys: Sequence[str]) -> list[Paper]:
        ids = [k.removeprefix("arxiv:") for k in keys if k.startswith("arxiv:")]
        titles = [k.removeprefix("title:") for k in keys if k.startswith("title:")]
        c = papers_table.c
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(papers_table).where(sa.or_(c.arxiv_id.in_(ids), c.title_key.in_(titles)))
            ).all()
        return [row_to_paper(r) for r in rows]

    def count_papers(self) -> int:
        with self._tx() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(papers_table)).scalar_one()
            )

    # -- digests --------------------------------------------------------------------------

    def candidates(
        self, emails: Sequence[str], now: datetime, new_subscriber_days: int
    ) -> Candidates:
        """The papers not yet considered for each subscriber.

        A subscriber has considered every paper up to its `seen_through` row id; one never
        seen before starts with the papers first seen in the last `new_subscriber_days`.
        """
        c = papers_table.c
        wanted = set(emails)
        with self._tx() as conn:
            known: dict[str, int] = {}
            for chunk in _chunks(list(wanted)):
                t = subscribers_table
                known.update(
                    (r.email, r.seen_through)
                    for r in conn.execute(
                        sa.select(t.c.email, t.c.seen_through).where(t.c.email.in_(chunk))
                    )
                )
            floor_id = _first_id_since(conn, now - timedelta(days=new_subscriber_days))
            starts = {e: known.get(e, floor_id - 1) for e in emails}
            if not starts:
                return Candidates()
            rows = conn.execute(
                sa.select(papers_table).where(c.id > min(starts.values())).order_by(c.id)
            ).all()
            sent: dict[str, set[int]] = {}
            sp = sent_papers_table.c
            for chunk in _chunks([r.id for r in rows]):
                for s in conn.execute(
                    sa.select(sp.subscriber, sp.paper_id).where(sp.paper_id.in_(chunk))
                ):
                    if s.subscriber in wanted:
                        sent.setdefault(s.subscriber, set()).add(s.paper_id)
        result = Candidates()
        keys = {}
        for row in rows:
            paper = row_to_paper(row)
            result.papers.append(paper)
            result.ids[paper.key] = row.id
            keys[row.id] = paper.key
        top = rows[-1].id if rows else 0
        # Most subscribers share a starting point: build each distinct set once.
        after: dict[int, set[int]] = {}
        for start in set(starts.values()):
            after[start] = {r.id for r in rows if r.id > start}
        for email in emails:
            ids = after[starts[email]] - sent.get(email, set())
            result.eligible[email] = {keys[i] for i in ids}
            result.seen_through[email] = max(top, starts[email])
        return result

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
        """After the mailer accepted a digest: the ledger rows and the subscriber's progress,
        in one transaction. The (subscriber, paper) key makes a second send impossible."""
        with self._tx() as conn:
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
                    [
                        {"subscriber": email, "paper_id": p, "delivery_id": delivery_id}
                        for p in paper_ids
                    ],
                )
            self._advance(conn, email, seen_through, now, delivered=True)

    def mark_considered(self, email: str, seen_through: int, now: datetime) -> None:
        """Nothing was worth sending: remember the papers were looked at."""
        with self._tx() as conn:
            self._advance(conn, email, seen_through, now, delivered=False)

    def _advance(
        self, conn: Connection, email: str, seen_through: int, now: datetime, *, delivered: bool
    ) -> None:
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

    def sent_keys(self, email: str) -> set[str]:
        """Keys of every paper ever sent to this subscriber."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(papers_table.c.arxiv_id, papers_table.c.title_key)
                .join(sent_papers_table, sent_papers_table.c.paper_id == papers_table.c.id)
                .where(sent_papers_table.c.subscriber == email)
            ).all()
        return {row_key(r) for r in rows}

    def delivery_count(self, email: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(deliveries_table)
        if email is not None:
            query = query.where(deliveries_table.c.subscriber == email)
        with self._tx() as conn:
            return int(conn.execute(query).scalar_one())

    def subscriber_status(self, emails: Sequence[str]) -> dict[str, tuple[datetime | None, int]]:
        """For each subscriber: when the last digest went out and how many papers in all."""
        t, s = subscribers_table, sent_papers_table
        with self._tx() as conn:
            last: dict[str, datetime | None] = {}
            counts: dict[str, int] = {}
            for chunk in _chunks(list(emails)):
                last.update(
                    (row.email, row.last_digest_at)
                    for row in conn.execute(
                        sa.select(t.c.email, t.c.last_digest_at).where(t.c.email.in_(chunk))
                    )
                )
                counts.update(
                    (row.subscriber, int(row.n))
                    for row in conn.execute(
                        sa.select(s.c.subscriber, sa.func.count().label("n"))
                        .where(s.c.subscriber.in_(chunk))
                        .group_by(s.c.subscriber)
                    )
                )
        return {e: (last.get(e), int(counts.get(e, 0))) for e in emails}

    @property
    def safe_url(self) -> str:
        return _safe_url(str(self.engine.url))

    # -- source state: what files were read and what URLs answered ------------------------

    def file_fingerprint(self, path: str) -> FileFingerprint | None:
        t = source_files_table
        with self._tx() as conn:
            row = conn.execute(sa.select(t).where(t.c.path == path)).first()
        return FileFingerprint(row.path, row.size, row.mtime_ns, row.sha256) if row else None

    def remember_file(self, fingerprint: FileFingerprint) -> None:
        t = source_files_table
        values = {
            "size": fingerprint.size,
            "mtime_ns": fingerprint.mtime_ns,
            "sha256": fingerprint.sha256,
            "read_at": _utcnow(),
        }
        with self._tx() as conn:
            _upsert(conn, t, {"path": fingerprint.path}, values)

    def http_validators(self, url: str) -> Validators | None:
        t = http_cache_table
        with self._tx() as conn:
            row = conn.execute(sa.select(t).where(t.c.url == url)).first()
        return Validators(row.etag, row.last_modified) if row else None

    def remember_http(self, url: str, validators: Validators) -> None:
        values = {
            "etag": validators.etag,
            "last_modified": validators.last_modified,
            "checked_at": _utcnow(),
        }
        with self._tx() as conn:
            _upsert(conn, http_cache_table, {"url": url}, values)

    # -- embeddings (the ranker's cache) ---------------------------------------------------

    def get(self, keys: Sequence[str], model: str) -> dict[str, np.ndarray]:
        t = embeddings_table
        found: dict[str, np.ndarray] = {}
        with self._tx() as conn:
            for chunk in _chunks(keys):
                for row in conn.execute(
                    sa.select(t.c.paper_key, t.c.vector).where(
                        t.c.model == model, t.c.paper_key.in_(chunk)
                    )
                ):
                    found[row.paper_key] = np.frombuffer(row.vector, dtype=np.float32)
        return found

    def put(self, vectors: Mapping[str, np.ndarray], model: str) -> None:
        t = embeddings_table
        with self._tx() as conn:
            items = list(vectors.items())
            for chunk in _chunks(items):
                conn.execute(
                    t.delete().where(t.c.model == model, t.c.paper_key.in_([k for k, _ in chunk]))
                )
                conn.execute(
                    t.insert(),
                    [
                        {
                            "paper_key": k,
                            "model": model,
                            "vector": np.asarray(v, np.float32).tobytes(),
                        }
                        for k, v in chunk
                    ],
                )


# -- helpers ------------------------------------------------------------------------------


def _remember(conn: Connection, memo: SourceMemo, now: datetime) -> None:
    if isinstance(memo, UrlMemo):
        values = {
            "etag": memo.validators.etag,
            "last_modified": memo.validators.last_modified,
            "checked_at": now,
        }
        _upsert(conn, http_cache_table, {"url": memo.url}, values)
    else:
        fingerprint = {"size": memo.size, "mtime_ns": memo.mtime_ns, "sha256": memo.sha256}
        _upsert(conn, source_files_table, {"path": memo.path}, {**fingerprint, "read_at": now})


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """Slices small enough for any database's limit on bound parameters."""
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _upsert(
    conn: Connection, table: sa.Table, key: Mapping[str, object], values: Mapping[str, object]
) -> None:
    """Update the row with this key, or insert it (portable: SQLite and PostgreSQL)."""
    where = [table.c[name] == value for name, value in key.items()]
    if conn.execute(table.update().where(*where).values(values)).rowcount == 0:
        conn.execute(table.insert().values({**key, **values}))


def _safe_url(url: str) -> str:
    """The URL without its password, for error messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc)) or type(exc).__name__
    return text.strip().splitlines()[0]


def _first_id_since(conn: Connection, since: datetime) -> int:
    c = papers_table.c
    first = conn.execute(sa.select(sa.func.min(c.id)).where(c.first_seen_at >= since)).scalar()
    if first is not None:
        return int(first)
    last = conn.execute(sa.select(sa.func.max(c.id))).scalar()
    return int(last or 0) + 1
