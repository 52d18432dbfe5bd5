"""a day remembers it was added to an ended session with confirmation (R-DAY-8, R-ENR-9), so
every message of it says so

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
    with op.batch_alter_table("days") as batch:
        batch.add_column(
            sa.Column(
                "reopens_session", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("days") as batch:
        batch.drop_column("reopens_session")
