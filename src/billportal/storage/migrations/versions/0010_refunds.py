"""refunds: refunds and what they took back from invoices; payments' amount refunded and gateway

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # payments is a big table: two columns added without a rewrite (a server default, and a nullable one).
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("amount_refunded", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("gateway", sa.String(length=16), nullable=True))
    # Online payments recorded before: their gateway is their attempt's.
    op.execute(
        "UPDATE payments SET gateway = (SELECT a.gateway FROM payment_attempts a WHERE a.payment_id = payments.id)"
        " WHERE gateway_payment_id IS NOT NULL"
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("refunded_on", sa.String(length=10), nullable=False),
        sa.Column("request_key", sa.String(length=100), nullable=False),
        sa.Column("gateway_refund_id", sa.String(length=255), nullable=True),
        sa.Column("message", sa.String(length=300), server_default="", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount")),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f("ck_refunds_status")),
        sa.CheckConstraint("source IN ('dashboard', 'api', 'gateway')", name=op.f("ck_refunds_source")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_refunds_company_id_companies"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("company_id", "request_key", name="uq_refunds_request_key"),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index("ix_refunds_payment", ["payment_id", "id"], unique=False)
        batch_op.create_index("uq_refunds_gateway_refund", ["company_id", "gateway_refund_id"], unique=True)
    op.create_table(
        "refund_applications",
        sa.Column("refund_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_refund_applications_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name=op.f("fk_refund_applications_refund_id_refunds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("refund_id", "invoice_id", name=op.f("pk_refund_applications")),
    )


def downgrade() -> None:
    op.drop_table("refund_applications")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("uq_refunds_gateway_refund")
        batch_op.drop_index("ix_refunds_payment")
    op.drop_table("refunds")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("gateway")
        batch_op.drop_column("amount_refunded")
