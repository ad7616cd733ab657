"""billing core: document number sequences, one active SSO key per company

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

from billportal.storage.migrate import create_index_online

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ACTIVE = "state = 'active'"


def upgrade() -> None:
    op.create_table(
        "number_sequences",
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("next_value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_number_sequences_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "kind", name=op.f("pk_number_sequences")),
    )
    # Concurrent rotations could leave two active keys before this release: the newest
    # stays active, the others keep verifying for a day, as after a rotation with grace.
    op.execute(
        sa.text(
            "UPDATE sso_keys SET state = 'retiring', retiring_until = :until"
            " WHERE state = 'active' AND id < (SELECT MAX(newer.id) FROM sso_keys AS newer"
            " WHERE newer.company_id = sso_keys.company_id AND newer.state = 'active')"
        ).bindparams(until=int(time.time()) + 86400)
    )
    create_index_online("uq_sso_keys_one_active", "sso_keys", ["company_id"], unique=True, where=_ACTIVE)


def downgrade() -> None:
    with op.batch_alter_table("sso_keys", schema=None) as batch_op:
        batch_op.drop_index("uq_sso_keys_one_active")
    op.drop_table("number_sequences")
