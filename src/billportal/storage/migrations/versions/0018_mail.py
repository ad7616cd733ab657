"""mail: the queue of messages out, the kinds each company turned on or off, addresses that bounced

Revision ID: 0018
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0012"
branch_labels = None
depends_on = None

_PENDING = sa.text("state = 'pending'")


def _company_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["company_id"], ["companies.id"], name=op.f(f"fk_{table}_company_id_companies"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "mail_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=100), nullable=True),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), server_default="", nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("locked_until", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_error", sa.String(length=200), server_default="", nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("state IN ('pending', 'sent', 'failed', 'bounced')", name=op.f("ck_mail_messages_state")),
        _company_fk("mail_messages"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_messages")),
    )
    op.create_index(
        "ix_mail_messages_due", "mail_messages", ["next_attempt_at"], sqlite_where=_PENDING, postgresql_where=_PENDING
    )
    op.create_index("ix_mail_messages_company", "mail_messages", ["company_id", "id"])
    op.create_index("uq_mail_messages_dedupe", "mail_messages", ["company_id", "dedupe_key"], unique=True)
    op.create_table(
        "mail_preferences",
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        _company_fk("mail_preferences"),
        sa.PrimaryKeyConstraint("company_id", "kind", name=op.f("pk_mail_preferences")),
    )
    op.create_table(
        "mail_bounces",
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.String(length=200), server_default="", nullable=False),
        sa.Column("bounced_at", sa.BigInteger(), nullable=False),
        _company_fk("mail_bounces"),
        sa.PrimaryKeyConstraint("company_id", "address", name=op.f("pk_mail_bounces")),
    )


def downgrade() -> None:
    op.drop_table("mail_bounces")
    op.drop_table("mail_preferences")
    op.drop_index("uq_mail_messages_dedupe", table_name="mail_messages")
    op.drop_index("ix_mail_messages_company", table_name="mail_messages")
    op.drop_index("ix_mail_messages_due", table_name="mail_messages", sqlite_where=_PENDING, postgresql_where=_PENDING)
    op.drop_table("mail_messages")
