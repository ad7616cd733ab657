"""API key scopes: what each key may do, chosen when it is made

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Keys made before scopes keep what they could do, except the SSO keys: reading and rotating
# them now needs a key made for it, by an admin who entered their password again.
_EXISTING_KEYS = "documents:read documents:write sign_in_links sign_in_events:read"


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scopes", sa.String(length=200), server_default="", nullable=False))
    op.execute(sa.text("UPDATE api_keys SET scopes = :scopes").bindparams(scopes=_EXISTING_KEYS))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("scopes")
