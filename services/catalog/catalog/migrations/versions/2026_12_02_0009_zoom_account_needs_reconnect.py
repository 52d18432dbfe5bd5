"""zoom account replica: needs_reconnect (the bridge's connection lost its refresh token)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zoom_account_replica") as batch:
        batch.add_column(
            sa.Column("needs_reconnect", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("zoom_account_replica") as batch:
        batch.drop_column("needs_reconnect")
