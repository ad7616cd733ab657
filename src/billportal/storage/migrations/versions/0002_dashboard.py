"""dashboard: sign-in log indexes, one-time admin passwords

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from billportal.storage.migrate import create_index_online

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_FAILURES = "result = 'failure'"


def upgrade() -> None:
    with op.batch_alter_table("admins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("must_change_password", sa.Boolean(), server_default="0", nullable=False))
    create_index_online(
        "ix_sign_in_events_failure_customer", "sign_in_events", ["company_id", "customer_id", "id"], where=_FAILURES
    )
    create_index_online("ix_sign_in_events_failures", "sign_in_events", ["company_id", "id"], where=_FAILURES)
    create_index_online(
        "ix_sign_in_events_failure_reason", "sign_in_events", ["company_id", "reason", "id"], where=_FAILURES
    )


def downgrade() -> None:
    with op.batch_alter_table("sign_in_events", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_events_failure_reason")
        batch_op.drop_index("ix_sign_in_events_failures")
        batch_op.drop_index("ix_sign_in_events_failure_customer")
    with op.batch_alter_table("admins", schema=None) as batch_op:
        batch_op.drop_column("must_change_password")
