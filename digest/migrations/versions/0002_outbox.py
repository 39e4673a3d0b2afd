"""The delivery outbox: messages planned, claimed, sent, retried or failed.

`deliveries` becomes `messages` (a row per planned digest, with its state), `sent_papers`
becomes `reservations` (a paper is reserved for a subscriber when a digest is planned;
the key (subscriber, paper) makes a second reservation impossible), plus papers released
by failed messages, suppressed addresses and a log of runs. Existing deliveries are sent
messages.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.rename_table("deliveries", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.alter_column("sent_at", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch.alter_column("destination", existing_type=sa.Text, nullable=True)
        batch.add_column(sa.Column("issue_date", sa.Date, nullable=True))
        batch.add_column(sa.Column("sequence", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="sent"))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.Text, nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text, nullable=True))
        batch.add_column(sa.Column("contents", sa.JSON, nullable=True))
        batch.add_column(sa.Column("run_id", sa.Integer, nullable=True))
        batch.create_unique_constraint("uq_messages_message_id", ["message_id"])
        batch.create_index("ix_messages_due", ["status", "next_attempt_at"])
        batch.drop_index("ix_deliveries_subscriber")
        batch.create_index("ix_messages_subscriber", ["subscriber"])
    op.execute("UPDATE messages SET created_at = sent_at, issue_date = sent_at")
    op.rename_table("sent_papers", "reservations")
    with op.batch_alter_table("reservations") as batch:
        batch.alter_column("delivery_id", new_column_name="message_id", existing_type=sa.Integer)
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("plan_version", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("refusals", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "released_papers",
        sa.Column("subscriber", sa.String(320), primary_key=True),
        sa.Column("paper_id", sa.Integer, sa.ForeignKey("papers.id"), primary_key=True),
    )
    op.create_table(
        "suppressions",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("planned", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("retrying", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("suppressed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    for table in ("runs", "suppressions", "released_papers"):
        op.drop_table(table)
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("refusals")
        batch.drop_column("plan_version")
    with op.batch_alter_table("reservations") as batch:
        batch.alter_column("message_id", new_column_name="delivery_id", existing_type=sa.Integer)
    op.rename_table("reservations", "sent_papers")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_due")
        batch.drop_index("ix_messages_subscriber")
        batch.create_index("ix_deliveries_subscriber", ["subscriber"])
        batch.drop_constraint("uq_messages_message_id", type_="unique")
        for column in (
            "run_id",
            "contents",
            "last_error",
            "claimed_by",
            "lease_until",
            "next_attempt_at",
            "created_at",
            "attempts",
            "status",
            "sequence",
            "issue_date",
        ):
            batch.drop_column(column)
    op.rename_table("messages", "deliveries")
