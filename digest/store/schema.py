"""The tables, as the queries see them. The Alembic migrations own the real schema:
a change here needs a new revision in `digest/migrations/versions/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A moment, stored in UTC and read back aware, on every database.

    SQLite keeps no offset: an aware time in another zone would be stored as its wall
    clock and compared as text with UTC ones. So every time is turned into UTC on the way
    in (a naive one is taken to be UTC already) and marked UTC on the way out."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()
papers_table = sa.Table(
    "papers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("arxiv_id", sa.String(32), unique=True),
    sa.Column("title_key", sa.Text, nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("abstract", sa.Text, nullable=False),
    sa.Column("authors", sa.JSON, nullable=False),
    sa.Column("author_count", sa.Integer),
    sa.Column("published", sa.Date),
    sa.Column("list_date", sa.Date),
    sa.Column("upvotes", sa.Integer),
    sa.Column("comments", sa.Integer),
    sa.Column("submitter", sa.Text),
    sa.Column("ai_summary", sa.Text),
    sa.Column("ai_keywords", sa.JSON, nullable=False),
    sa.Column("categories", sa.JSON, nullable=False, server_default="[]"),
    # new/cross, or replace/replace-cross for a paper known only from revisions
    # (never offered to a digest); NULL for papers from the other sources.
    sa.Column("announce", sa.String(16)),
    sa.Column("github_repo", sa.Text),
    sa.Column("github_stars", sa.Integer),
    sa.Column("project_page", sa.Text),
    sa.Column("organization", sa.Text),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("first_seen_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
subscribers_table = sa.Table(
    "subscribers",
    metadata,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("seen_through", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_digest_at", UtcDateTime()),
    # Bumped by every plan: a planner that read an older version lost the race.
    sa.Column("plan_version", sa.Integer, nullable=False, server_default="0"),
    # Consecutive digests the server refused permanently (5xx).
    sa.Column("refusals", sa.Integer, nullable=False, server_default="0"),
    # The last scheduled slot handled (sent or skipped): a slot is handled once.
    sa.Column("last_slot_at", UtcDateTime()),
)
# The outbox: one row per planned digest. status: pending, sending (claimed, until
# lease_until), sent, retry (at next_attempt_at) or failed (last_error says why).
messages_table = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscriber", sa.String(320), nullable=False, index=True),
    sa.Column("sent_at", UtcDateTime()),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("destination", sa.Text),
    sa.Column("paper_count", sa.Integer, nullable=False),
    sa.Column("issue_date", sa.Date),
    sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.String(16), nullable=False, server_default="sent"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", UtcDateTime()),
    sa.Column("next_attempt_at", UtcDateTime()),
    sa.Column("lease_until", UtcDateTime()),
    sa.Column("claimed_by", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("contents", sa.JSON),  # the digest as planned: considered, papers with why
    sa.Column("run_id", sa.Integer),
    sa.UniqueConstraint("message_id", name="uq_messages_message_id"),
    sa.Index("ix_messages_due", "status", "next_attempt_at"),
)
# A paper reserved for (planned) or sent to a subscriber: never twice.
reservations_table = sa.Table(
    "reservations",
    metadata,
    sa.Column("subscriber", sa.String(320), primary_key=True),
    sa.Column("paper_id", sa.Integer, sa.ForeignKey("papers.id"), primary_key=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
)
# Papers of a failed message, offered again in the subscriber's next digest.
released_papers_table = sa.Table(
    "released_papers",
    metadata,
    sa.Column("subscriber", sa.String(320), primary_key=True),
    sa.Column("paper_id", sa.Integer, sa.ForeignKey("papers.id"), primary_key=True),
)
suppressions_table = sa.Table(
    "suppressions",
    metadata,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime()),
    sa.Column("planned", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retrying", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("suppressed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("errors", sa.JSON),
)
source_files_table = sa.Table(
    "source_files",
    metadata,
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("read_at", UtcDateTime(), nullable=False),
)
http_cache_table = sa.Table(
    "http_cache",
    metadata,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("checked_at", UtcDateTime(), nullable=False),
)
embeddings_table = sa.Table(
    "embeddings",
    metadata,
    sa.Column("paper_key", sa.Text, primary_key=True),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)
# Why a digest was or was not sent: one row per subscriber per decision (`digest why`).
decisions_table = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscriber", sa.String(320), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("slot_at", UtcDateTime()),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("considered", sa.Integer, nullable=False, server_default="0"),
    sa.Column("papers", sa.Integer, nullable=False, server_default="0"),
    sa.Column("message_id", sa.Text),
    sa.Column("run_id", sa.Integer),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # The papers this decision drew on: row ids in (considered_from, considered_through]
    # (`digest why` ranks them again to show every one; null: nothing was considered).
    sa.Column("considered_from", sa.Integer),
    sa.Column("considered_through", sa.Integer),
    sa.Index("ix_decisions_subscriber_day", "subscriber", "day"),
)
fetches_table = sa.Table(
    "fetches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("fetched", sa.Integer, nullable=False, server_default="0"),
    sa.Column("new", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("errors", sa.JSON),
    sa.Index("ix_fetches_source_at", "source", "at"),
)
# -- subscriber state (migration 0004): feedback from the email, bounces read from DSNs.
# Unsubscribes and suppressions by bounce share `suppressions` above.
# A subscriber's latest "more"/"less like this" per paper.
feedback_table = sa.Table(
    "feedback",
    metadata,
    sa.Column("subscriber", sa.String(320), primary_key=True),
    sa.Column("paper_key", sa.Text, primary_key=True),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("issue_date", sa.Date),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
# One row per recipient per delivery-status notification read (report_id: the DSN's
# Message-ID, else a hash of it), so reading a mailbox twice counts nothing twice.
# `cleared`: counted before `digest subscribers enable`, no longer.
bounces_table = sa.Table(
    "bounces",
    metadata,
    sa.Column("subscriber", sa.String(320), primary_key=True),
    sa.Column("report_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("hard", sa.Boolean, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("cleared", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
