"""Each decision names the range of papers it drew on, so `digest why` can list them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("considered_from", sa.Integer, nullable=True))
        batch.add_column(sa.Column("considered_through", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("considered_through")
        batch.drop_column("considered_from")
