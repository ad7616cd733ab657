"""online payments: payment settings, saved payment methods, payment attempts, gateway events

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from billportal.storage.migrate import create_index_online

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "autopay_enrollments",
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("enrolled_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_autopay_enrollments_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "customer_id", name=op.f("pk_autopay_enrollments")),
    )
    op.create_table(
        "gateway_events",
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_gateway_events_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("company_id", "event_id", name=op.f("pk_gateway_events")),
    )
    op.create_table(
        "payment_methods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("gateway", sa.String(length=16), nullable=False),
        sa.Column("gateway_ref", sa.String(length=255), nullable=False),
        sa.Column("brand", sa.String(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_payment_methods_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_methods")),
        sa.UniqueConstraint("company_id", "gateway", "gateway_ref", name="uq_payment_methods_gateway_ref"),
    )
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.create_index("ix_payment_methods_customer", ["company_id", "customer_id"], unique=False)

    op.create_table(
        "payment_settings",
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("gateway", sa.String(length=16), server_default="none", nullable=False),
        sa.Column("test_mode", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("allow_partial", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("allow_saved_methods", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("allow_autopay", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("autopay_retry_days", sa.String(length=64), server_default="1,3,7", nullable=False),
        sa.Column("publishable_key", sa.String(length=255), server_default="", nullable=False),
        sa.Column("secret_key_sealed", sa.Text(), server_default="", nullable=False),
        sa.Column("webhook_secret_sealed", sa.Text(), server_default="", nullable=False),
        sa.Column("api_base", sa.Text(), server_default="", nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "gateway <> 'test' OR test_mode", name=op.f("ck_payment_settings_test_gateway_in_test_mode")
        ),
        sa.CheckConstraint("gateway IN ('none', 'test', 'stripe')", name=op.f("ck_payment_settings_gateway")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_payment_settings_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_payment_settings")),
    )
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("gateway", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("applications", sa.Text(), server_default="[]", nullable=False),
        sa.Column("gateway_payment_id", sa.String(length=255), nullable=True),
        sa.Column("method_detail", sa.String(length=64), server_default="", nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.String(length=300), server_default="", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'declined', 'failed')", name=op.f("ck_payment_attempts_status")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_payment_attempts_company_id_companies"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_attempts_payment_id_payments"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempts")),
        sa.UniqueConstraint("company_id", "gateway_payment_id", name="uq_payment_attempts_gateway_payment"),
        sa.UniqueConstraint("company_id", "token", name="uq_payment_attempts_token"),
    )
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_payment_attempts_customer", ["company_id", "customer_id"], unique=False)

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("method_detail", sa.String(length=64), server_default="", nullable=False))
        batch_op.add_column(sa.Column("gateway_payment_id", sa.String(length=255), nullable=True))
    # payments is a big table: its index is built without blocking writes (CONCURRENTLY on PostgreSQL).
    create_index_online("uq_payments_gateway_payment", "payments", ["company_id", "gateway_payment_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("uq_payments_gateway_payment")
        batch_op.drop_column("gateway_payment_id")
        batch_op.drop_column("method_detail")

    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_attempts_customer")

    op.drop_table("payment_attempts")
    op.drop_table("payment_settings")
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_methods_customer")

    op.drop_table("payment_methods")
    op.drop_table("gateway_events")
    op.drop_table("autopay_enrollments")
