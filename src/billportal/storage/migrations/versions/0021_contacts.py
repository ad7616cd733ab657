"""contacts: a customer's contacts, their sign-ins and sessions, the company's Contacts page switch

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contacts_page", sa.Boolean(), server_default="0", nullable=False))
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=254), server_default="", nullable=False))
    with op.batch_alter_table("sign_in_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("email_sign_ins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "contacts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_contacts_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    op.create_index("uq_contacts_customer_email", "contacts", ["company_id", "customer_id", "email"], unique=True)
    op.create_index("ix_contacts_email", "contacts", ["company_id", "email"])


def downgrade() -> None:
    op.drop_index("ix_contacts_email", table_name="contacts")
    op.drop_index("uq_contacts_customer_email", table_name="contacts")
    op.drop_table("contacts")
    with op.batch_alter_table("email_sign_ins", schema=None) as batch_op:
        batch_op.drop_column("contact_id")
    with op.batch_alter_table("sign_in_events", schema=None) as batch_op:
        batch_op.drop_column("contact_id")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("email")
        batch_op.drop_column("contact_id")
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_column("contacts_page")
