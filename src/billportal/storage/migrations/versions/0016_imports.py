"""CSV imports: the uploads kept between the dashboard's preview and the admin's confirmation

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_uploads",
        sa.Column("id_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("session_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=200), server_default="", nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('customers', 'invoices')", name=op.f("ck_import_uploads_kind")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_import_uploads_company_id_companies"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["session_hash"],
            ["admin_sessions.id_hash"],
            name=op.f("fk_import_uploads_session_hash_admin_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_import_uploads")),
    )
    op.create_index("ix_import_uploads_expires_at", "import_uploads", ["expires_at"])
    op.create_index("ix_import_uploads_session_hash", "import_uploads", ["session_hash"])


def downgrade() -> None:
    op.drop_index("ix_import_uploads_session_hash", table_name="import_uploads")
    op.drop_index("ix_import_uploads_expires_at", table_name="import_uploads")
    op.drop_table("import_uploads")
