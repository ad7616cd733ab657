"""admins and roles: every existing admin an owner, and invitations by email

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every admin could do everything until now: each stays able to, as an owner.
    op.execute(sa.text("UPDATE admin_memberships SET role = 'owner'"))
    with op.batch_alter_table("admin_memberships", schema=None) as batch_op:
        batch_op.alter_column("role", existing_type=sa.String(length=16), server_default="owner")
    op.create_table(
        "admin_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("invited_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("accepted_at", sa.BigInteger(), nullable=True),
        sa.Column("accepted_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_admin_invitations_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_admin_invitations_token_hash")),
    )
    op.create_index("ix_admin_invitations_company", "admin_invitations", ["company_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_admin_invitations_company", table_name="admin_invitations")
    op.drop_table("admin_invitations")
    with op.batch_alter_table("admin_memberships", schema=None) as batch_op:
        batch_op.alter_column("role", existing_type=sa.String(length=16), server_default="admin")
