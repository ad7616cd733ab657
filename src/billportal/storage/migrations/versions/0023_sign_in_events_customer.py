"""sign_in_events by customer: one index for every customer filter (successes too), replacing the failures-only one

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from billportal.storage.migrate import create_index_online, drop_index_online

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index_online("ix_sign_in_events_customer", "sign_in_events", ["company_id", "customer_id", "id"])
    drop_index_online("ix_sign_in_events_failure_customer", "sign_in_events")


def downgrade() -> None:
    failures = sa.text("result = 'failure'")
    op.create_index(
        "ix_sign_in_events_failure_customer",
        "sign_in_events",
        ["company_id", "customer_id", "id"],
        sqlite_where=failures,
        postgresql_where=failures,
    )
    op.drop_index("ix_sign_in_events_customer", table_name="sign_in_events")
