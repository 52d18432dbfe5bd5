"""day place and link; known users by user id

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("day_replica", sa.Column("address", sa.Text(), nullable=True))
    op.add_column("day_replica", sa.Column("url", sa.Text(), nullable=True))
    op.create_index("ix_known_user_user", "known_user", ["company_id", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_known_user_user", table_name="known_user")
    with op.batch_alter_table("day_replica") as batch:
        batch.drop_column("url")
        batch.drop_column("address")
