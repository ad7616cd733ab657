"""import_contacts: an upload kept between the dashboard's preview and confirmation may hold contacts

The check on ``import_uploads.kind`` is dropped rather than widened: adding a check constraint
scans the table under a lock (tests/unit/storage/test_migrations_online.py), and the kinds are
services/imports.py's to say (an upload of another kind is never read back as one).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_uploads", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_import_uploads_kind"), type_="check")


def downgrade() -> None:
    op.execute("DELETE FROM import_uploads WHERE kind NOT IN ('customers', 'invoices')")
    with op.batch_alter_table("import_uploads", schema=None) as batch_op:
        batch_op.create_check_constraint("kind", "kind IN ('customers', 'invoices')")
