"""a day replica remembers R-ENR-9 was applied for it (once per day, whatever the order of its
messages)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("day_replica") as batch:
        batch.add_column(
            sa.Column("reopened", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("day_replica") as batch:
        batch.drop_column("reopened")
