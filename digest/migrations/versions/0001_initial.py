"""The first tables: papers, subscribers, the delivery ledger, source state, embeddings.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "papers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("arxiv_id", sa.String(32), nullable=True, unique=True),
        sa.Column("title_key", sa.Text, nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False, server_default=""),
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
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "subscribers",
        sa.Column("email", sa.String(320), primary_key=True),
        # Papers with an id up to this one have been considered for this subscriber.
        sa.Column("seen_through", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_digest_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscriber", sa.String(320), nullable=False, index=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("destination", sa.Text, nullable=False),
        sa.Column("paper_count", sa.Integer, nullable=False),
    )
    op.create_table(
        "sent_papers",
        sa.Column("subscriber", sa.String(320), primary_key=True),
        sa.Column("paper_id", sa.Integer, sa.ForeignKey("papers.id"), primary_key=True),
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False),
    )
    op.create_table(
        "source_files",
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "http_cache",
        sa.Column("url", sa.Text, primary_key=True),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "embeddings",
        sa.Column("paper_key", sa.Text, primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "embeddings",
        "http_cache",
        "source_files",
        "sent_papers",
        "deliveries",
        "subscribers",
        "papers",
    ):
        op.drop_table(table)
