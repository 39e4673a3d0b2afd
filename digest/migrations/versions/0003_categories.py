"""arXiv categories on papers, and how arXiv announced them (revisions are never offered).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("categories", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("announce", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.drop_column("announce")
        batch.drop_column("categories")
