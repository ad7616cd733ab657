"""email sign-in: the company's switch, emailed links and codes, sessions' devices, sign-ins' method

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from billportal.storage.migrate import create_index_online

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_sign_in", sa.Boolean(), server_default="0", nullable=False))
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device", sa.String(length=100), server_default="", nullable=False))
    with op.batch_alter_table("sign_in_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("method", sa.String(length=8), server_default="sso", nullable=False))
    create_index_online("ix_customers_email", "customers", ["company_id", sa.text("lower(email)")])
    op.create_table(
        "email_sign_ins",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("link_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("page", sa.String(length=40), server_default="", nullable=False),
        sa.Column("tries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_email_sign_ins_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_sign_ins")),
        sa.UniqueConstraint("link_hash", name=op.f("uq_email_sign_ins_link_hash")),
    )
    op.create_index("ix_email_sign_ins_email", "email_sign_ins", ["company_id", "email", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_email_sign_ins_email", table_name="email_sign_ins")
    op.drop_table("email_sign_ins")
    op.drop_index("ix_customers_email", table_name="customers")
    with op.batch_alter_table("sign_in_events", schema=None) as batch_op:
        batch_op.drop_column("method")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("device")
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_column("email_sign_in")
