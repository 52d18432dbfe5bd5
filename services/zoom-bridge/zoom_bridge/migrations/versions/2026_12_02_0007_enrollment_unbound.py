"""registration's enrollments may name no user yet (made for an e-mail)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.alter_column("user_id", existing_type=sa.String(100), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM enrollments WHERE user_id IS NULL")
    with op.batch_alter_table("enrollments") as batch:
        batch.alter_column("user_id", existing_type=sa.String(100), nullable=False)
