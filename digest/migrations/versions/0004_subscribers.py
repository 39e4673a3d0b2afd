"""Subscriber state: feedback from the email ("more/less like this") and bounces read from
delivery-status notifications. Unsubscribes and addresses suppressed after hard bounces go
into `suppressions` (0002).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("subscriber", sa.String(320), primary_key=True),
        sa.Column("paper_key", sa.Text, primary_key=True),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("issue_date", sa.Date, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "bounces",
        sa.Column("subscriber", sa.String(320), primary_key=True),
        sa.Column("report_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hard", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("cleared", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bounces")
    op.drop_table("feedback")
