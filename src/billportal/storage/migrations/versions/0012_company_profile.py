"""company settings: the seller's legal name, address, tax id, contact, default currency, footer and logo

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TEXT_COLUMNS = (
    ("legal_name", 200),
    ("address_line1", 200),
    ("address_line2", 200),
    ("city", 100),
    ("postal_code", 32),
    ("region", 100),
    ("country", 2),
    ("tax_id", 64),
    ("support_email", 254),
    ("support_phone", 64),
)


def upgrade() -> None:
    with op.batch_alter_table("companies", schema=None) as batch_op:
        for name, length in _TEXT_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), server_default="", nullable=False))
        batch_op.add_column(sa.Column("default_currency", sa.String(length=3), server_default="USD", nullable=False))
        batch_op.add_column(sa.Column("footer_text", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("logo_sha256", sa.String(length=64), server_default="", nullable=False))
    op.create_table(
        "company_logos",
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=16), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("content_type IN ('image/png', 'image/jpeg')", name=op.f("ck_company_logos_content_type")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_company_logos_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_company_logos")),
    )


def downgrade() -> None:
    op.drop_table("company_logos")
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_column("logo_sha256")
        batch_op.drop_column("footer_text")
        batch_op.drop_column("default_currency")
        for name, _length in reversed(_TEXT_COLUMNS):
            batch_op.drop_column(name)
