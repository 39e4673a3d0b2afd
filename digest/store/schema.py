"""The tables, as the queries see them. The Alembic migrations own the real schema:
a change here needs a new revision in `digest/migrations/versions/`."""

from __future__ import annotations

import sqlalchemy as sa

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
    sa.Column("github_repo", sa.Text),
    sa.Column("github_stars", sa.Integer),
    sa.Column("project_page", sa.Text),
    sa.Column("organization", sa.Text),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
subscribers_table = sa.Table(
    "subscribers",
    metadata,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("seen_through", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_digest_at", sa.DateTime(timezone=True)),
)
deliveries_table = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscriber", sa.String(320), nullable=False, index=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("destination", sa.Text, nullable=False),
    sa.Column("paper_count", sa.Integer, nullable=False),
)
sent_papers_table = sa.Table(
    "sent_papers",
    metadata,
    sa.Column("subscriber", sa.String(320), primary_key=True),
    sa.Column("paper_id", sa.Integer, sa.ForeignKey("papers.id"), primary_key=True),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False),
)
source_files_table = sa.Table(
    "source_files",
    metadata,
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
)
http_cache_table = sa.Table(
    "http_cache",
    metadata,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
)
embeddings_table = sa.Table(
    "embeddings",
    metadata,
    sa.Column("paper_key", sa.Text, primary_key=True),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)
