"""Scheduling and operations: each subscriber's last handled slot, a log of decisions
(why a digest was or was not sent), and a log of fetches per source.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("last_slot_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscriber", sa.String(320), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("considered", sa.Integer, nullable=False, server_default="0"),
        sa.Column("papers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("message_id", sa.Text, nullable=True),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_decisions_subscriber_day", "decisions", ["subscriber", "day"])
    op.create_table(
        "fetches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fetched", sa.Integer, nullable=False, server_default="0"),
        sa.Column("new", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", sa.JSON, nullable=True),
    )
    op.create_index("ix_fetches_source_at", "fetches", ["source", "at"])


def downgrade() -> None:
    op.drop_index("ix_fetches_source_at", "fetches")
    op.drop_table("fetches")
    op.drop_index("ix_decisions_subscriber_day", "decisions")
    op.drop_table("decisions")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("last_slot_at")
