"""customers' tax ids; when and why a customer declined an estimate

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tax_id", sa.String(length=64), server_default="", nullable=False))
    with op.batch_alter_table("estimates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("declined_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("decline_reason", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("estimates", schema=None) as batch_op:
        batch_op.drop_column("decline_reason")
        batch_op.drop_column("declined_at")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("tax_id")
